from whisper_mxq import compile, logs

logs.to_file(snakemake.log)
compile.compile_mblt(snakemake.input[0], snakemake.wildcards.part, snakemake.output[0], snakemake.params.compile)
