import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import data, logs

logs.to_file(snakemake.log)
p = snakemake.params
data.write_source_stamp(data.Source(p.source, p.split), p.lang, snakemake.output[0])
