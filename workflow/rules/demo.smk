# The offline demo (tests/config/offline.yaml): a tiny random Whisper with the real
# multilingual tokenizer, a tiny openai-whisper checkpoint for the labels, and
# FLEURS-layout Parquet shards with espeak-ng speech. Built only when config has `demo`.

if DEMO:

    rule demo_model:
        output:
            directory(layout.inside_workdir(DEMO["model"], "demo.model")),
        log:
            "logs/demo/model.log",
        localrule: True
        conda:
            "../../envs/calibration.yaml"
        script:
            "../scripts/demo_model.py"

    rule demo_label_model:
        output:
            layout.inside_workdir(DEMO["label_model"], "demo.label_model"),
        log:
            "logs/demo/label_model.log",
        localrule: True
        conda:
            "../../envs/calibration.yaml"
        script:
            "../scripts/demo_label_model.py"

    # its shards by name: a language's source stamp (common.smk) takes them as inputs
    # on the first run as on every later one
    rule demo_fleurs:
        output:
            demo_shards(),
        log:
            "logs/demo/fleurs.log",
        localrule: True
        conda:
            "../../envs/calibration.yaml"
        params:
            # the folder of the `{folder}/{lang}/{split}/0000.parquet` shards
            folder=lambda w, output: os.path.dirname(os.path.dirname(os.path.dirname(output[0]))),
            languages=DEMO_LANGUAGES,
            split=config["fleurs"]["split"],
        script:
            "../scripts/demo_fleurs.py"
