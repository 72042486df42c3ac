import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import bundle, logs

logs.to_file(snakemake.log)
bundle.build_bundle(
    snakemake.input.model,
    snakemake.input.encoder,
    snakemake.input.decoder,
    snakemake.output[0],
    runtime=snakemake.params.runtime,
    dev_no=snakemake.params.dev_no,
)
