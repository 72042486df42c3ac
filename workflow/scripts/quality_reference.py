from whisper_mxq import logs, quality

logs.to_file(snakemake.log)
quality.write_reference(
    snakemake.input.model,
    list(snakemake.input.manifests),
    snakemake.output[0],
    quality.Settings(max_new_tokens=snakemake.params.max_new_tokens, threads=snakemake.threads),
)
