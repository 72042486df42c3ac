import os

from whisper_mxq import calibration, logs, models, report

logs.to_file(snakemake.log)
shapes = models.shapes(snakemake.input.model)
calib = calibration.write_decoder_calib(
    [os.path.dirname(p) for p in snakemake.input.tokens],
    snakemake.output.calib,
    snakemake.output.metadata,
    shapes.d_model,
    shapes.n_source,
)
report.write_calibration_report(list(snakemake.input.manifests), calib, snakemake.output.report)
