# Model snapshots: fetched once (needs the Hub unless local), loaded offline after.


rule snapshot_model:
    input:
        source=local_input(config["model"]),
    output:
        directory(SNAPSHOT),
    log:
        f"logs/snapshot_model/{MODEL}.log",
    benchmark:
        f"benchmarks/snapshot_model/{MODEL}.tsv"
    localrule: True  # fetches from the Hub: runs on the submit host
    conda:
        "../../envs/calibration.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        source=source_param(config["model"]),
    script:
        "../scripts/snapshot_model.py"


if LABEL_SNAPSHOT != SNAPSHOT:

    rule snapshot_label_model:
        input:
            source=local_input(config["labels"]["model"]),
        output:
            LABEL_SNAPSHOT if LABELS_FROM_OPENAI_WHISPER else directory(LABEL_SNAPSHOT),
        log:
            f"logs/snapshot_label_model/{LABEL_MODEL}.log",
        benchmark:
            f"benchmarks/snapshot_label_model/{LABEL_MODEL}.tsv"
        localrule: True  # fetches from the internet: runs on the submit host
        conda:
            "../../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=16000,
            runtime=60,
        params:
            source=source_param(config["labels"]["model"]),
            openai_whisper=LABELS_FROM_OPENAI_WHISPER,
        script:
            "../scripts/snapshot_label_model.py"
