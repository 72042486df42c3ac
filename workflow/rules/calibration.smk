# Step 2: per-sample calibration files, computed in jobs of samples_per_job samples
# (one model load per job). A job's outputs are its samples' files, so one changed
# WAV re-runs one group; the rules are stamped out per group because a Snakemake
# rule's outputs are a fixed pattern list.

for _g in range(N_GROUPS):

    rule:
        name:
            f"calibrate_encoder_{group_name(_g)}"
        input:
            wavs=lambda w, g=_g: wavs(w.lang, group_indices(g)),
            model=SNAPSHOT,
        output:
            lang_pattern(layout.ENCODER_NPY, group_indices(_g)),
        log:
            f"logs/calibrate_encoder/{{lang}}_{group_name(_g)}.log",
        benchmark:
            f"benchmarks/calibrate_encoder/{{lang}}_{group_name(_g)}.tsv"
        group:
            "calibrate"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        conda:
            "../../envs/calibration.yaml"
        script:
            "../scripts/calibrate_encoder.py"

    rule:
        name:
            f"calibrate_decoder_{group_name(_g)}"
        input:
            features=lang_pattern(layout.ENCODER_NPY, group_indices(_g)),
            model=SNAPSHOT,
        output:
            encoder_states=lang_pattern(layout.DECODER_ENCODER_STATES, group_indices(_g)),
            decoder_states=lang_pattern(layout.DECODER_DECODER_STATES, group_indices(_g)),
            tokens=lang_pattern(layout.DECODER_TOKENS, group_indices(_g)),
        params:
            samples=lambda w, g=_g: samples_of(w.lang, group_indices(g)),
            seed=config["seed"],
            settings=config["calibration"],
        log:
            f"logs/calibrate_decoder/{{lang}}_{group_name(_g)}.log",
        benchmark:
            f"benchmarks/calibrate_decoder/{{lang}}_{group_name(_g)}.tsv"
        group:
            "calibrate"
        threads: 2
        resources:
            mem_mb=8000,
            runtime=120,
            gpu=gpus("calibration"),
        conda:
            "../../envs/calibration.yaml"
        script:
            "../scripts/calibrate_decoder.py"


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


rule decoder_calib:
    input:
        tokens=paths(layout.DECODER_TOKENS, all_samples()),
        encoder_states=paths(layout.DECODER_ENCODER_STATES, all_samples()),
        decoder_states=paths(layout.DECODER_DECODER_STATES, all_samples()),
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
