import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import logs, models

logs.to_file(snakemake.log)
models.snapshot_model(snakemake.params.source, snakemake.output[0])
