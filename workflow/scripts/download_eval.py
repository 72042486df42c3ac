import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import data, heldout, logs

logs.to_file(snakemake.log)
p = snakemake.params
heldout.download_eval_job(
    data.Source(p.source, p.split),
    [data.Part(lang, count, data.next_row(before, lang) if before else 0) for lang, count, before in p.parts],
    list(snakemake.output.wavs),
    snakemake.output.manifest,
    snakemake.output.stamp,
    [tuple(pair) for pair in p.calibration],
    p.max_skipped_fraction,
    threads=snakemake.threads,
)
