import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import devices, labels, logs

logs.to_file(snakemake.log)
p = snakemake.params
labels.label_job(
    p.source,
    snakemake.input.model,
    p.manifest,
    snakemake.input.stamp,
    snakemake.output[0],
    batch_size_setting=p.batch_size,
    max_tokens=p.max_tokens,
    device=devices.pick(p.device),
    threads=snakemake.threads,
)
