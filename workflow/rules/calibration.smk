# Step 2: per-sample calibration files, one calibrate job per job of the plan: the job
# loads the model once and streams its samples in batches, each sample's encoder
# features and then its decoder files from them. Its outputs are its samples' files and
# its summary; the aggregate steps read the summaries (one per job, not thousands of
# per-sample files) and check every file they list.

for _job in JOBS:

    rule:
        name:
            f"calibrate_{_job.name}"
        input:
            stamp=stamp(_job),
            model=SNAPSHOT,
        output:
            **job_files(_job),
            summary=layout.CALIBRATION_JOB.format(job=_job.name),
        log:
            f"logs/calibrate/{_job.name}.log",
        benchmark:
            f"benchmarks/calibrate/{_job.name}.tsv"
        group:
            "calibrate"
        conda:
            "../../envs/calibration.yaml"
        # feature threads: they keep a GPU fed (Snakemake lowers it to --cores)
        threads: 4
        resources:
            mem_mb=8000,
            runtime=120,
            gpu=gpus("calibration"),
        params:
            manifest=layout.MANIFEST.format(job=_job.name),
            seed=config["seed"],
            # the plan's keys left out: the job's samples are its inputs and outputs,
            # and `auto` must not differ from what it stands for
            settings={
                k: v
                for k, v in config["calibration"].items()
                if k not in ("samples_per_job", "pack_languages")
            },
        message:
            job_message(f"calibrate_{_job.name}", clips(_job))
        script:
            "../scripts/calibrate.py"


rule encoder_list:
    input:
        summaries=summaries(),
        model=SNAPSHOT,
    output:
        layout.ENCODER_LIST,
    log:
        "logs/encoder_list.log",
    localrule: True
    conda:
        "../../envs/calibration.yaml"
    script:
        "../scripts/encoder_list.py"


rule decoder_calib:
    input:
        summaries=summaries(),
        manifests=[layout.MANIFEST.format(job=job.name) for job in JOBS],
        model=SNAPSHOT,
    output:
        calib=layout.DECODER_JSON,
        metadata=layout.DECODER_METADATA,
        report=layout.CALIBRATION_REPORT,
    log:
        "logs/decoder_calib.log",
    localrule: True
    conda:
        "../../envs/calibration.yaml"
    script:
        "../scripts/decoder_calib.py"


rule calibration:
    input:
        calibration_files(),
        lambda w: missing_files("calibration"),
    localrule: True
