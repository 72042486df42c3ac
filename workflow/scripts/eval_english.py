import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import data, heldout, logs

logs.to_file(snakemake.log)
heldout.write_english_references(
    data.Source(snakemake.params.source, snakemake.params.split),
    list(snakemake.input.manifests),
    snakemake.output[0],
)
