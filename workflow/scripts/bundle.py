from whisper_mxq import bundle, logs

logs.to_file(snakemake.log)
bundle.build_bundle(
    snakemake.input.model, snakemake.input.encoder, snakemake.input.decoder, snakemake.output[0]
)
