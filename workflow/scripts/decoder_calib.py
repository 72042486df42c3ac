import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import calibration, decoder_calibration, logs, models

logs.to_file(snakemake.log)
shapes = models.shapes(snakemake.input.model)
calib = decoder_calibration.write_decoder_calib(
    list(snakemake.input.summaries),
    snakemake.output.calib,
    snakemake.output.metadata,
    shapes.d_model,
    shapes.n_source,
)
calibration.write_report(
    list(snakemake.input.manifests), calib, snakemake.output.report, list(snakemake.input.summaries)
)
