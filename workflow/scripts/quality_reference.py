import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import logs, report

logs.to_file(snakemake.log)
report.write_reference(
    snakemake.input.model,
    list(snakemake.input.manifests),
    snakemake.output[0],
    snakemake.params.max_new_tokens,
    snakemake.threads,
)
