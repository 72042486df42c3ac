# Step 2: per-sample calibration files, computed in jobs of samples_per_job samples
# (calibrate_jobs: whole small languages share a job, large ones are cut): the job
# loads the model once and streams its samples in batches, each sample's encoder
# features and then its decoder files from them. A job's outputs are its samples'
# files, so one changed WAV re-runs one job.
# The rules are stamped out per job with literal paths: a rule's outputs are a fixed
# list, and literal paths keep Snakemake's output lookup from testing every file
# against every per-sample pattern (quadratic in the samples).

for _name, _samples in calibrate_jobs():
    rule:
        name:
            f"calibrate_{_name}"
        input:
            wavs=paths(layout.AUDIO, _samples),
            model=SNAPSHOT,
        output:
            features=paths(layout.ENCODER_NPY, _samples),
            encoder_states=paths(layout.DECODER_ENCODER_STATES, _samples),
            decoder_states=paths(layout.DECODER_DECODER_STATES, _samples),
            tokens=paths(layout.DECODER_TOKENS, _samples),
        params:
            samples=_samples,
            seed=config["seed"],
            # the job's samples are its inputs and outputs; samples_per_job left out
            # so that `auto` and the number it stands for are the same to the
            # params rerun trigger
            settings={k: v for k, v in config["calibration"].items() if k != "samples_per_job"},
        log:
            f"logs/calibrate/{_name}.log",
        benchmark:
            f"benchmarks/calibrate/{_name}.tsv"
        group:
            "calibrate"
        # feature threads: they keep a GPU fed (Snakemake lowers it to --cores)
        threads: 4
        resources:
            mem_mb=8000,
            runtime=120,
            gpu=gpus("calibration"),
        conda:
            "../../envs/calibration.yaml"
        script:
            "../scripts/calibrate.py"


rule encoder_list:
    input:
        features=paths(layout.ENCODER_NPY, all_samples()),
        model=SNAPSHOT,
    output:
        layout.ENCODER_LIST,
    log:
        "logs/encoder_list.log",
    conda:
        "../../envs/calibration.yaml"
    script:
        "../scripts/encoder_list.py"


# A sample folder's tokens.json is written last, by the job that writes its two .npy
# files, so it stands for the folder: listing the .npy files too would only add 2 x
# (samples) producer lookups to every DAG build (issue 4). The job still checks each
# .npy's header, and Snakemake still tracks them as the calibrate job's outputs.
rule decoder_calib:
    input:
        tokens=paths(layout.DECODER_TOKENS, all_samples()),
        manifests=expand(layout.MANIFEST, lang=LANGUAGES),
        model=SNAPSHOT,
    output:
        calib=layout.DECODER_JSON,
        metadata=layout.DECODER_METADATA,
        report=layout.CALIBRATION_REPORT,
    log:
        "logs/decoder_calib.log",
    conda:
        "../../envs/calibration.yaml"
    script:
        "../scripts/decoder_calib.py"


rule calibration:
    input:
        calibration_files(),
