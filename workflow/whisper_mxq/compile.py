"""Step 3: qbcompiler (Mobilint's proprietary SDK): model -> .mblt -> .mxq.

qbcompiler is not on PyPI. Without it a compile job fails at once with the message
below, and never writes a placeholder .mblt/.mxq. The API moved between releases
(FACTS.md §5); what the installed version offers is detected, not assumed.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

from . import atomic

INSTALL_HINT = (
    "qbcompiler (Mobilint's NPU compiler SDK) is not installed in this Python environment. "
    "It is not on PyPI: download the qbcompiler wheel (the tutorial uses 1.0.1) for your "
    "platform from Mobilint's release page https://dl.mobilint.com/releases?series-id=1 and "
    "`pip install qbcompiler-<version>-<platform>.whl` into the environment that runs "
    "Snakemake (or point --use-conda at envs/qbcompiler.yaml after putting the wheel beside "
    "it), or run the workflow inside Mobilint's `mobilint/qbcompiler` Docker image."
)


class QbcompilerMissing(RuntimeError):
    pass


def import_qbcompiler():
    try:
        return importlib.import_module("qbcompiler")
    except ImportError as e:
        raise QbcompilerMissing(f"{INSTALL_HINT} (import failed: {e})") from None


def available() -> bool:
    try:
        import_qbcompiler()
    except QbcompilerMissing:
        return False
    return True


def _version(qb) -> tuple[int, ...]:
    parts = []
    for piece in str(getattr(qb, "__version__", "0")).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def mblt_kwargs(qb, part: str, n_mels: int, n_frames: int) -> dict:
    """Encoder: backend "torch" in 1.0.x, "hf" with a feed_dict later. Decoder: "hf"."""
    kwargs: dict = {"target": part, "device": "cpu"}
    if part == "decoder" or _version(qb) < (1, 1):
        kwargs["backend"] = "hf" if part == "decoder" else "torch"
        return kwargs
    import torch

    kwargs["backend"] = "hf"
    kwargs["feed_dict"] = {"input_features": torch.zeros(1, n_mels, n_frames)}
    return kwargs


def llm_config(qb):
    """Decoder LLM config with full-sequence-length calibration, in whichever form the
    installed release offers."""
    configs = getattr(qb, "configs", None)
    if configs is not None and hasattr(configs, "LlmConfig"):  # 1.1+
        cfg = configs.LlmConfig
        return cfg(
            apply=True,
            attributes=cfg.Attributes(
                calibration=cfg.Attributes.Calibration(use_full_seq_length=True)
            ),
        )
    get = getattr(qb, "get_llm_config", None)
    if get is None:
        raise RuntimeError(
            f"qbcompiler {getattr(qb, '__version__', '?')} offers neither configs.LlmConfig "
            "nor get_llm_config: unsupported release"
        )
    params = inspect.signature(get).parameters
    if "use_full_seq_len_calib" in params:  # 0.12
        return get(use_full_seq_len_calib=True)
    return get(llm_config_apply=True, use_full_seq_length=True)  # 1.0.x


def compile_mblt(snapshot: str, part: str, out_path: str) -> None:
    """Parse the float32 model's encoder or decoder into the .mblt graph."""
    qb = import_qbcompiler()
    from .models import load_model

    model = load_model(snapshot, "cpu")
    n_mels = model.config.num_mel_bins
    n_frames = 2 * model.config.max_source_positions
    with atomic.atomic_path(out_path) as tmp:
        qb.mblt_compile(model=model, mblt_save_path=str(tmp), **mblt_kwargs(qb, part, n_mels, n_frames))
        _require_written(tmp, "mblt_compile")


def compile_mxq(
    mblt_path: str,
    calib_path: str,
    part: str,
    out_path: str,
    *,
    device: str,
    inference_scheme: str | None,
    llm: bool,
) -> None:
    """Quantize the .mblt with the calibration list/JSON into the NPU binary."""
    qb = import_qbcompiler()
    kwargs: dict = {"device": device}
    if inference_scheme:
        kwargs["inference_scheme"] = inference_scheme
    if llm:
        kwargs["llm_config"] = llm_config(qb)
    with atomic.atomic_path(out_path) as tmp:
        qb.mxq_compile(
            model=str(mblt_path), calib_data_path=os.path.abspath(calib_path), save_path=str(tmp), **kwargs
        )
        _require_written(tmp, "mxq_compile")


def _require_written(tmp: Path, call: str) -> None:
    # qbcompiler reports some failures by printing and returning; an empty file must not
    # pass for a compiled model.
    if not tmp.exists() or tmp.stat().st_size == 0:
        raise RuntimeError(f"qbcompiler.{call} returned without writing {tmp}")
