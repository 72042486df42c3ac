# Step 1b: reference transcriptions and English translations, one label job per job of
# the plan: the label model is loaded once per job and decodes its clips in batches.

for _job in JOBS:

    rule:
        name:
            f"label_{_job.name}"
        input:
            stamp=stamp(_job),
            model=LABEL_SNAPSHOT,
        output:
            layout.LABELS.format(job=_job.name),
        log:
            f"logs/label/{_job.name}.log",
        benchmark:
            f"benchmarks/label/{_job.name}.tsv"
        group:
            "label"
        conda:
            "../../envs/data.yaml"
        # clip reading and log-mel: they keep a GPU fed (Snakemake lowers it to --cores)
        threads: 4
        resources:
            mem_mb=16000,
            runtime=120,
            gpu=gpus("labels"),
        params:
            manifest=layout.MANIFEST.format(job=_job.name),
            source=config["labels"]["model"],
            batch_size=config["labels"]["batch_size"],
            max_tokens=config["labels"]["max_tokens"],
            device=device("labels"),
        message:
            job_message(f"label_{_job.name}", clips(_job))
        script:
            "../scripts/label.py"


rule merge_labels:
    input:
        [layout.LABELS.format(job=job.name) for job in JOBS],
    output:
        transcriptions=layout.TRANSCRIPTIONS,
        translations=layout.TRANSLATIONS,
    log:
        "logs/merge_labels.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/merge_labels.py"


rule labels:
    input:
        layout.TRANSCRIPTIONS,
        layout.TRANSLATIONS,
    localrule: True
