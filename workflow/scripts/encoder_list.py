import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import calibration, encoder_calibration, logs, models

logs.to_file(snakemake.log)
shapes = models.shapes(snakemake.input.model)
encoder_calibration.write_encoder_list(
    calibration.job_samples(list(snakemake.input.summaries)),
    snakemake.output[0],
    shapes.n_mels,
    shapes.n_frames,
)
