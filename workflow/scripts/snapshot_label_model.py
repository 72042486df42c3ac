import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import logs, models

logs.to_file(snakemake.log)
if snakemake.params.openai_whisper:
    models.snapshot_label_model(snakemake.params.source, snakemake.output[0])
else:
    models.snapshot_model(snakemake.params.source, snakemake.output[0], key="labels.model")
