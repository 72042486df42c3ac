# Step 1a: FLEURS -> 16 kHz mono WAVs, one job per language. Stamped out per language
# with literal paths, for the same reason as the calibration rules: a wildcard rule
# with one output pattern per sample makes Snakemake's lookup quadratic in the samples.

for _lang in LANGUAGES:

    rule:
        name:
            f"download_{_lang}"
        input:
            local_input(config["fleurs"]["source"]),
        output:
            wavs=wavs(_lang),
            manifest=layout.MANIFEST.format(lang=_lang),
        params:
            lang=_lang,
            source=config["fleurs"]["source"],
            split=config["fleurs"]["split"],
            max_skipped_fraction=config["data"]["max_skipped_fraction"],
        log:
            f"logs/download/{_lang}.log",
        benchmark:
            f"benchmarks/download/{_lang}.tsv"
        localrule: True  # fetches from the internet: runs on the submit host
        retries: 2
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        conda:
            "../../envs/data.yaml"
        script:
            "../scripts/download.py"
