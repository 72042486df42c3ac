import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import compile, logs

logs.to_file(snakemake.log)
compile.compile_mxq(
    snakemake.input.mblt,
    snakemake.input.calib,
    snakemake.wildcards.part,
    snakemake.output[0],
    compile_cfg=snakemake.params.compile,
    device=snakemake.params.device,
)
