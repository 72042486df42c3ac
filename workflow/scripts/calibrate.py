import _paths  # noqa: F401  (whisper_mxq importable in any env)

import os

from whisper_mxq import calibration, devices, logs

logs.to_file(snakemake.log)
cfg = snakemake.params.settings
calibration.calibrate_job(
    snakemake.input.model,
    snakemake.params.manifest,
    snakemake.input.stamp,
    list(snakemake.output.features),
    [os.path.dirname(p) for p in snakemake.output.encoder_states],
    snakemake.output.summary,
    calibration.Settings(
        seed=snakemake.params.seed,
        translate_ratio=cfg["translate_ratio"],
        max_new_tokens=cfg["max_new_tokens"],
        batch_size=cfg["batch_size"],
        normalize_text=cfg["normalize_text"],
        dtype=cfg["dtype"],
    ),
    device=devices.pick(cfg["device"]),
    threads=snakemake.threads,
)
