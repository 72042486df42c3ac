from whisper_mxq import demo, logs

logs.to_file(snakemake.log)
demo.build_tiny_model(snakemake.output[0])
