import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import compile, devices, logs

logs.to_file(snakemake.log)
devices.isolate(snakemake.params.device)  # a GPU of this job's own, before qbcompiler starts CUDA
compile.compile_mxq(
    snakemake.input.mblt,
    snakemake.input.calib,
    snakemake.wildcards.part,
    snakemake.output[0],
    compile_cfg=snakemake.params.compile,
    device=snakemake.params.device,
)
