import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import data, logs

logs.to_file(snakemake.log)
p = snakemake.params
data.download_job(
    data.Source(p.source, p.split),
    [data.Part(lang, count, data.next_row(before, lang) if before else 0) for lang, count, before in p.parts],
    list(snakemake.output.wavs),
    snakemake.output.manifest,
    snakemake.output.stamp,
    p.max_skipped_fraction,
    threads=snakemake.threads,
)
