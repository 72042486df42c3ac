# Step 1b: reference transcriptions and English translations with openai-whisper.


rule label:
    input:
        wavs=lambda w: wavs(w.lang, group_indices(w.group)),
        model=LABEL_SNAPSHOT,
    output:
        layout.LABELS,
    params:
        batch_size=config["labels"]["batch_size"],
        max_tokens=config["labels"]["max_tokens"],
        device=device("labels"),
    log:
        "logs/label/{lang}_{group}.log",
    benchmark:
        "benchmarks/label/{lang}_{group}.tsv"
    group:
        "label"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=120,
        gpu=gpus("labels"),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/label.py"


rule merge_labels:
    input:
        [
            layout.LABELS.format(lang=lang, group=group_name(g))
            for lang in LANGUAGES
            for g in range(N_GROUPS)
        ],
    output:
        transcriptions=layout.TRANSCRIPTIONS,
        translations=layout.TRANSLATIONS,
    log:
        "logs/merge_labels.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/merge_labels.py"
