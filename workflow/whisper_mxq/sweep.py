"""INT8 quality against calibration set size, with and without the translate samples.

Each point quantizes both parts from a subset of the calibration files and measures
encoder and decoder agreement with FP32 on the held-out clips (no free-running decode:
that is the report's).
"""

from __future__ import annotations

import os

import numpy as np

from . import atomic, inference, layout, onnx_int8
from .heldout import clips as read_clips
from .report import NOTE, agreement

MIXES = ("all", "transcribe")  # every calibration sample, or no translation samples


def sweep_sizes(total: int, sizes: list[int] | None) -> list[int]:
    """1, 2, 4, ... below `total`, then `total` itself; or the configured sizes."""
    if sizes:
        return sorted({min(s, total) for s in sizes})
    out = [1 << k for k in range(total.bit_length()) if 1 << k < total]
    return out + [total]


def sweep_subset(decoder_json: str, size: int, mix: str) -> list[str]:
    """`size` calibration samples spread over languages (round robin in file order),
    without the translation samples when mix is `transcribe`."""
    entries = [e for e in onnx_int8.decoder_calibration(decoder_json) if mix == "all" or not e["use_translation"]]
    by_lang: dict[str, list[str]] = {}
    for e in entries:
        by_lang.setdefault(layout.sample_lang(e["sample"]), []).append(e["sample"])
    order = [
        s
        for rank in range(max(map(len, by_lang.values()), default=0))
        for samples in by_lang.values()
        if rank < len(samples)
        for s in samples[rank : rank + 1]
    ]
    return order[:size]


def sweep_point(
    snapshot: str,
    manifests: list[str],
    reference_json: str,
    fp32: dict[str, str],
    calib: dict[str, str],
    size: int,
    mix: str,
    method: str,
    per_channel: bool,
    recipe: str,
    work_dir: str,
    threads: int = 1,
) -> dict:
    """Quantize both parts from a subset of the calibration set; mean encoder and decoder
    agreement with FP32 on the held-out clips."""
    import torch

    torch.set_num_threads(threads)
    samples = sweep_subset(calib["decoder"], size, mix)
    os.makedirs(work_dir, exist_ok=True)
    int8 = {part: os.path.join(work_dir, f"{part}.int8.onnx") for part in layout.PARTS}
    for part in layout.PARTS:
        onnx_int8.quantize_part(part, fp32[part], calib[part], int8[part], method, per_channel, recipe, samples)
    ctx = inference.Context(snapshot, read_clips(manifests), manifests)
    reference = {r["sample"]: r for r in atomic.read_json(reference_json)["clips"]}
    path = inference.OnnxPath(int8["encoder"], int8["decoder"], ctx.model, threads)
    rows = [
        agreement(ctx, path, i, reference[c.sample]["tasks"]["transcribe"]["tokens"]) for i, c in enumerate(ctx.clips)
    ]
    keys = ("encoder_cosine", "encoder_sqnr_db", "decoder_top1_agreement")
    means = {k: [r[k] for r in rows if r[k] is not None] for k in keys}
    return {
        "size": size,
        "mix": mix,
        "samples": samples,
        "calibration_samples": len(samples),
        **{k: float(np.mean(v)) if v else None for k, v in means.items()},
    }


def write_sweep(points: list[dict], out_json: str, out_png: str, info: dict) -> dict:
    from . import plots

    result = {"note": NOTE, **info, "points": sorted(points, key=lambda p: (p["mix"], p["size"]))}
    plots.plot_sweep(result, MIXES, out_png)
    atomic.write_json(out_json, result)
    return result
