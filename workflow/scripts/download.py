from whisper_mxq import data, logs

logs.to_file(snakemake.log)
data.download(
    data.Source(snakemake.params.source, snakemake.params.split),
    snakemake.params.lang,
    list(snakemake.output.wavs),
    snakemake.output.manifest,
    snakemake.params.max_skipped_fraction,
)
