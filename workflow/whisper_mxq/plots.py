"""Plots of the quality report and the calibration-size sweep (PNG, for `--report`)."""

from __future__ import annotations

import numpy as np

from . import atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def plot_report(report: dict, wer_png: str, encoder_png: str, latency_png: str) -> None:
    plt = _pyplot()
    langs = list(report["languages"]) + ["overall"]
    rows = [report["languages"][lang] for lang in langs[:-1]] + [report["overall"]]
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(6, len(langs)), 4))
    for k, (key, label) in enumerate(
        [("wer_fp32", "FP32 vs reference"), ("wer_int8", "INT8 vs reference"), ("wer_int8_vs_fp32", "INT8 vs FP32")]
    ):
        ax.bar(x + (k - 1) * 0.27, [_value(r[key]) for r in rows], 0.27, label=label)
    ax.set_xticks(x, langs, rotation=30)
    ax.set_ylabel("WER")
    ax.set_title(f"{report['model']}: word error rate on held-out clips")
    ax.legend()
    _save(fig, wer_png)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(max(8, 1.5 * len(langs)), 4))
    a1.bar(x, [_value(r["encoder_sqnr_db"]) for r in rows])
    a1.set_xticks(x, langs, rotation=30)
    a1.set_ylabel("encoder SQNR (dB)")
    a2.bar(x, [_value(r["decoder_top1_agreement"]) for r in rows], color="tab:orange")
    a2.set_xticks(x, langs, rotation=30)
    a2.set_ylabel("decoder top-1 agreement")
    a2.set_ylim(0, 1)
    fig.suptitle(f"{report['model']}: INT8 agreement with FP32")
    _save(fig, encoder_png)
    plt.close(fig)

    lat = report["latency"]
    names = ["FP32 PyTorch", "FP32 ONNX", f"INT8 {report.get('backend', 'onnx').upper()}"]
    values = [lat["encoder_fp32_torch_ms"], lat["encoder_fp32_onnx_ms"], lat["encoder_int8_ms"]]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(names, values, color=["tab:gray", "tab:blue", "tab:green"])
    ax.set_ylabel(f"encoder latency, ms (median of {lat['runs']}, {lat['threads']} threads)")
    ax.set_title(f"{report['model']}: CPU encoder latency")
    _save(fig, latency_png)
    plt.close(fig)


def plot_sweep(result: dict, mixes: tuple[str, ...], out_png: str) -> None:
    plt = _pyplot()
    keys = [
        ("encoder_sqnr_db", "encoder SQNR (dB)"),
        ("encoder_cosine", "encoder cosine"),
        ("decoder_top1_agreement", "decoder top-1 agreement"),
    ]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4))
    for ax, (key, label) in zip(axes, keys):
        for mix in mixes:
            pts = [p for p in result["points"] if p["mix"] == mix]
            if pts:
                ax.plot(
                    [p["calibration_samples"] for p in pts],
                    [_value(p[key]) for p in pts],
                    "o-",
                    label="with translation" if mix == "all" else "transcription only",
                )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("calibration samples")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(f"{result.get('model', '')}: INT8 quality vs calibration set size")
    _save(fig, out_png)
    plt.close(fig)


def _value(v) -> float:
    """None (nothing to score) plots as an empty bar."""
    return float("nan") if v is None else v
