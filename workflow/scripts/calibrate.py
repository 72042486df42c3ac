import os

from whisper_mxq import calibration, logs, models

logs.to_file(snakemake.log)
cfg = snakemake.params.settings
calibration.calibrate_group(
    snakemake.input.model,
    snakemake.params.samples,
    list(snakemake.input.wavs),
    list(snakemake.output.features),
    [os.path.dirname(p) for p in snakemake.output.tokens],
    calibration.DecoderSettings(
        seed=snakemake.params.seed,
        translate_ratio=cfg["translate_ratio"],
        max_new_tokens=cfg["max_new_tokens"],
        batch_size=cfg["batch_size"],
        normalize_text=cfg["normalize_text"],
        dtype=cfg["dtype"],
    ),
    device=models.pick_device(cfg["device"]),
    threads=snakemake.threads,
)
