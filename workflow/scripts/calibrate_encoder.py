from whisper_mxq import calibration, logs

logs.to_file(snakemake.log)
calibration.calibrate_encoder(
    snakemake.input.model, list(snakemake.input.wavs), list(snakemake.output)
)
