# Step 1a: FLEURS -> 16 kHz mono WAVs, one job per language.


rule download:
    input:
        local_input(config["fleurs"]["source"]),
    output:
        wavs=lang_pattern(layout.AUDIO, range(N_SAMPLES)),
        manifest=layout.MANIFEST,
    params:
        source=config["fleurs"]["source"],
        split=config["fleurs"]["split"],
        max_skipped_fraction=config["data"]["max_skipped_fraction"],
    log:
        "logs/download/{lang}.log",
    benchmark:
        "benchmarks/download/{lang}.tsv"
    retries: 2
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/download.py"
