from whisper_mxq import logs, onnx_int8

logs.to_file(snakemake.log)
used = onnx_int8.quantize_part(
    snakemake.wildcards.part,
    snakemake.input.onnx,
    snakemake.input.calib,
    snakemake.output[0],
    snakemake.params.method,
    snakemake.params.per_channel,
)
print(f"quantized with {used} calibration samples ({snakemake.params.method})")
