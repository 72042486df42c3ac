import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import logs, onnx_int8

logs.to_file(snakemake.log)
onnx_int8.export(snakemake.input[0], snakemake.wildcards.part, snakemake.output[0])
