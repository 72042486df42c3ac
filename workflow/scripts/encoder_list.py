from whisper_mxq import calibration, logs, models

logs.to_file(snakemake.log)
shapes = models.shapes(snakemake.input.model)
calibration.write_encoder_list(
    list(snakemake.input.features), snakemake.output[0], shapes.n_mels, shapes.n_frames
)
