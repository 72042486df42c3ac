import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import labels, logs

logs.to_file(snakemake.log)
labels.merge_labels(list(snakemake.input), snakemake.output.transcriptions, snakemake.output.translations)
