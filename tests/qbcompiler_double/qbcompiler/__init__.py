"""Test double of Mobilint's qbcompiler, for the workflow's tests only.

It records every call (JSON lines in $QBCOMPILER_DOUBLE_LOG) and really opens every
calibration file it is handed, failing like a compiler would on a missing, truncated
or mis-shaped one. Its "binaries" say in their first bytes that they are fakes. The
API generation it imitates is chosen by $QBCOMPILER_DOUBLE_VERSION (0.12.0, 1.0.1
(default) or 1.1.0), so the workflow's version detection is exercised too.
"""

from __future__ import annotations

import json
import os
import types

import numpy as np

__version__ = os.environ.get("QBCOMPILER_DOUBLE_VERSION", "1.0.1")
FAKE_HEADER = b"QBCOMPILER-TEST-DOUBLE, NOT AN NPU BINARY\n"


def _record(call: str, **kwargs) -> None:
    log = os.environ.get("QBCOMPILER_DOUBLE_LOG")
    if not log:
        return
    entry = {"call": call, "version": __version__, **{k: _plain(v) for k, v in kwargs.items()}}
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")


def _plain(value):
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "shape"):
        return {"tensor_shape": list(value.shape)}
    return type(value).__name__


def mblt_compile(model, mblt_save_path, backend, target, device="cpu", feed_dict=None):
    if not hasattr(model, "model") or not hasattr(model.model, target):
        raise TypeError(f"mblt_compile: model has no .model.{target}")
    if backend not in ("torch", "hf"):
        raise ValueError(f"mblt_compile: unknown backend {backend!r}")
    config = model.config
    _record(
        "mblt_compile",
        mblt_save_path=str(mblt_save_path),
        backend=backend,
        target=target,
        device=device,
        feed_dict=feed_dict,
        model_class=type(model).__name__,
        d_model=config.d_model,
        num_mel_bins=config.num_mel_bins,
        training=model.training,
        dtype=str(next(model.parameters()).dtype),
    )
    with open(mblt_save_path, "wb") as f:
        f.write(FAKE_HEADER + json.dumps({"target": target, "d_model": config.d_model}).encode())


def _read_calibration(calib_data_path: str) -> list[dict]:
    """Open every file the calibration list or JSON names; return what was read."""
    seen = []
    if calib_data_path.endswith(".txt"):
        with open(calib_data_path, encoding="utf-8") as f:
            paths = [line.strip() for line in f if line.strip()]
        groups = [[p] for p in paths]
    else:
        with open(calib_data_path, encoding="utf-8") as f:
            calib = json.load(f)
        groups = calib["calib paths"]
        shapes = calib["info"]["input shapes"]
        names = calib["info"]["input names"]
        assert names == ["decoder_hidden_states", "encoder_hidden_states"], names
    for group in groups:
        for i, path in enumerate(group):
            if not os.path.isabs(path):
                raise ValueError(f"calibration path is not absolute: {path}")
            arr = np.load(path, allow_pickle=False)
            if arr.dtype != np.float32 or not np.all(np.isfinite(arr)):
                raise ValueError(f"{path}: {arr.dtype}, finite={np.all(np.isfinite(arr))}")
            if not calib_data_path.endswith(".txt"):
                want = shapes[i]
                if len(want) != arr.ndim or any(w not in (-1, g) for w, g in zip(want, arr.shape)):
                    raise ValueError(f"{path}: shape {arr.shape} does not match {want}")
            seen.append({"path": path, "shape": list(arr.shape)})
    if not seen:
        raise ValueError(f"{calib_data_path}: no calibration data")
    return seen


def mxq_compile(model, calib_data_path, save_path, device="cuda", inference_scheme=None, llm_config=None):
    with open(model, "rb") as f:
        if not f.read().startswith(FAKE_HEADER):
            raise ValueError(f"{model}: not an .mblt written by mblt_compile")
    seen = _read_calibration(str(calib_data_path))
    _record(
        "mxq_compile",
        model=str(model),
        calib_data_path=str(calib_data_path),
        save_path=str(save_path),
        device=device,
        inference_scheme=inference_scheme,
        llm_config=llm_config,
        calibration_files=seen,
    )
    with open(save_path, "wb") as f:
        f.write(FAKE_HEADER + json.dumps({"calibration_files": len(seen)}).encode())


# --- the LLM config, as each release spells it --------------------------------------
if __version__.startswith("0.12"):

    def get_llm_config(use_full_seq_len_calib=False):
        return {"generation": "0.12", "use_full_seq_len_calib": use_full_seq_len_calib}

elif __version__.startswith("1.0"):

    def get_llm_config(llm_config_apply=False, use_full_seq_length=False):
        return {"generation": "1.0", "apply": llm_config_apply, "use_full_seq_length": use_full_seq_length}

else:

    class LlmConfig(dict):
        class Attributes(dict):
            class Calibration(dict):
                def __init__(self, use_full_seq_length=False):
                    super().__init__(use_full_seq_length=use_full_seq_length)

            def __init__(self, calibration=None):
                super().__init__(calibration=calibration)

        def __init__(self, apply=False, attributes=None):
            super().__init__(generation="1.1", apply=apply, attributes=attributes)

    configs = types.SimpleNamespace(LlmConfig=LlmConfig)
