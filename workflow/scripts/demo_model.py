import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import demo, logs

logs.to_file(snakemake.log)
demo.build_tiny_model(snakemake.output[0])
