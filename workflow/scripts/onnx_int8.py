import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import atomic, logs, onnx_int8

logs.to_file(snakemake.log)
p = snakemake.params
described = onnx_int8.quantize_part(
    snakemake.wildcards.part,
    snakemake.input.onnx,
    snakemake.input.calib,
    snakemake.output.model,
    p.method,
    p.per_channel,
    p.recipe,
)
atomic.write_json(snakemake.output.precision, described)
print(f"quantized with {described['calibration_samples']} calibration samples ({p.recipe}, {p.method})")
