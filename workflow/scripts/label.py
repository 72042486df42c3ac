from whisper_mxq import labels, logs, models

logs.to_file(snakemake.log)
labels.label_group(
    snakemake.input.model,
    snakemake.wildcards.lang,
    list(snakemake.input.wavs),
    snakemake.output[0],
    batch_size=snakemake.params.batch_size,
    max_tokens=snakemake.params.max_tokens,
    device=models.pick_device(snakemake.params.device),
)
