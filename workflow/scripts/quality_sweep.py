import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import atomic, logs, sweep

logs.to_file(snakemake.log)
sweep.write_sweep(
    [atomic.read_json(p) for p in snakemake.input],
    snakemake.output.json,
    snakemake.output.plot,
    snakemake.params.info,
)
