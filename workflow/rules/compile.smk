# Step 3: qbcompiler. The .mblt needs only the model, so it is parsed while
# calibration still runs; the .mxq waits for the calibration file.


rule mblt:
    input:
        SNAPSHOT,
    output:
        layout.MBLT,
    log:
        "logs/mblt/{model}_{part}.log",
    benchmark:
        "benchmarks/mblt/{model}_{part}.tsv"
    conda:
        "../../envs/qbcompiler.yaml"
    priority: 50
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    script:
        "../scripts/compile_mblt.py"


rule mxq:
    input:
        mblt=layout.MBLT,
        calib=lambda w: calibration_of(w.part),
    output:
        layout.MXQ,
    params:
        device=device("compile"),
        scheme=lambda w: config["compile"][w.part]["inference_scheme"],
        llm=lambda w: w.part == "decoder"
        and config["compile"]["decoder"]["full_seq_length_calibration"],
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
    script:
        "../scripts/compile_mxq.py"
