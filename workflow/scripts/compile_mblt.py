import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import compile, logs

logs.to_file(snakemake.log)
compile.compile_mblt(snakemake.input.model, snakemake.wildcards.part, snakemake.output[0], snakemake.params.compile)
