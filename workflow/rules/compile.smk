# Step 3: qbcompiler. The .mblt needs only the model, so it is parsed while
# calibration still runs; the .mxq waits for the calibration file. The first job of a
# compile finds qbcompiler (or fails at once with what to install, before the hours of
# calibration): it needs nothing and goes first.


rule qbcompiler:
    output:
        layout.QBCOMPILER_FOUND,
    log:
        "logs/qbcompiler.log",
    priority: 100
    conda:
        "../../envs/qbcompiler.yaml"
    params:
        # what the release must offer: the recipe and the board
        compile={k: config["compile"][k] for k in ("target_device", "recipe")},
    script:
        "../scripts/qbcompiler_check.py"


rule mblt:
    input:
        model=SNAPSHOT,
        qbcompiler=layout.QBCOMPILER_FOUND,
    output:
        layout.MBLT,
    log:
        "logs/mblt/{model}_{part}.log",
    benchmark:
        "benchmarks/mblt/{model}_{part}.tsv"
    priority: 50
    conda:
        "../../envs/qbcompiler.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        # each board gets its own parse; the recipe picks the 1.3 decoder's part options
        compile=lambda w: {k: config["compile"][k] for k in ("target_device", "recipe")},
    script:
        "../scripts/compile_mblt.py"


rule mxq:
    input:
        mblt=layout.MBLT,
        calib=lambda w: calibration_of(w.part),
        qbcompiler=layout.QBCOMPILER_FOUND,
    output:
        layout.MXQ,
    log:
        "logs/mxq/{model}_{part}.log",
    benchmark:
        "benchmarks/mxq/{model}_{part}.tsv"
    conda:
        "../../envs/qbcompiler.yaml"
    threads: 2
    resources:
        mem_mb=32000,
        runtime=240,
        gpu=gpus("compile"),
    params:
        device=device("compile"),
        compile=config["compile"],
    script:
        "../scripts/compile_mxq.py"
