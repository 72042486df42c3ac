from whisper_mxq import data, logs, quality

logs.to_file(snakemake.log)
quality.download_eval(
    data.Source(snakemake.params.source, snakemake.params.split),
    snakemake.wildcards.lang,
    list(snakemake.output.wavs),
    snakemake.output.manifest,
    snakemake.input.calibration,
    snakemake.params.max_skipped_fraction,
)
