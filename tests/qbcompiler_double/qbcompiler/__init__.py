"""Test double of Mobilint's qbcompiler, for the workflow's tests only.

It imitates one API generation at a time, chosen by $QBCOMPILER_DOUBLE_VERSION, from
what Mobilint's public tutorials, guides and user reports show of each:

| generation | LLM config | mblt_compile | target_device | mxq device |
| --- | --- | --- | --- | --- |
| 0.12.0 | get_llm_config(use_full_seq_len_calib) | backend torch or hf, target= | none | cuda, cpu |
| 1.0.1 (default) | get_llm_config(llm_config_apply, use_full_seq_length) | as 0.12 | none | cuda, cpu |
| 1.1.2 | configs.LlmConfig (+ Calibration/Bit/EquivalentTransformation/SearchWeightScale) | as 0.12 | optional: aries2, regulus2 | gpu, cpu |
| 1.2.0 | as 1.1 | as 0.12 | optional: aries-rb, regulus-ra, regulus-rb | gpu, cpu |
| 1.3.0 | as 1.2 + HessianQuantConfig | load_for_part + model_part, backend torch ("hf" removed) | required | gpu, cpu |

It refuses what the real one refuses: an unknown keyword (TypeError, as a Python
function does), an unknown backend, device or target name, a config object of the wrong
class, an unknown config field (ValueError, as Pydantic), a scheme other than `single`
on REGULUS, an .mblt parsed for another target or part, and calibration files that are
missing, pickled, non-finite, not float32, or of another shape than the graph's inputs.
It records every call (JSON lines in $QBCOMPILER_DOUBLE_LOG) and opens every calibration
file it is handed. Its "binaries" (fake_mxq) say in their first bytes that they are
fakes; an .mxq carries the input and output shapes the graph was parsed with, as a real
one does, for the qbruntime double and the runtime recorders to read back
($QBCOMPILER_DOUBLE_MXQ_INPUTS, JSON, replaces the inputs written: a fault to inject).
"""

from __future__ import annotations

import json
import os

import fake_mxq
import numpy as np

__version__ = os.environ.get("QBCOMPILER_DOUBLE_VERSION", "1.0.1")
GENERATION = tuple(int(p) for p in __version__.split(".")[:2])
GENERATIONS = ("0.12.0", "1.0.1", "1.1.2", "1.2.0", "1.3.0")
FAKE_HEADER = fake_mxq.FAKE_HEADER

if GENERATION >= (1, 2):
    TARGET_DEVICES = ("aries-rb", "regulus-ra", "regulus-rb")
elif GENERATION >= (1, 1):
    TARGET_DEVICES = ("aries2", "regulus2")
else:
    TARGET_DEVICES = ()
DEVICES = ("gpu", "cpu") if GENERATION >= (1, 1) else ("cuda", "cpu")
SCHEMES = ("single", "multi", "global4", "global8", "all")
# 1.3's parser takes framework models by backend name; "hf" is gone (Mobilint's 1.3 notes)
BACKENDS = (
    ("onnx", "torch", "tf", "tensorflow", "keras", "tflite", "torchscript") if GENERATION >= (1, 3) else ("torch", "hf")
)


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
    if hasattr(value, "to_dict"):
        return {"class": type(value).__qualname__, **_plain(value.to_dict())}
    if hasattr(value, "shape"):
        return {"tensor_shape": list(value.shape)}
    return type(value).__name__


def _target(target_device, required: bool) -> str:
    """The target name this generation accepts; TypeError where it has no such argument."""
    if not TARGET_DEVICES:
        if target_device is not None:
            raise TypeError(f"qbcompiler {__version__}: unexpected keyword argument 'target_device'")
        return "aries"
    if target_device is None:
        if required:
            raise TypeError(f"qbcompiler {__version__}: missing required keyword argument 'target_device'")
        return TARGET_DEVICES[0]
    if target_device not in TARGET_DEVICES:
        raise ValueError(f"Unsupported device name: {target_device!r}")
    return target_device


# --- parsing: model -> .mblt ---------------------------------------------------------------
def _io_shapes(config, part: str, last_token_only: bool) -> dict:
    """The graph's inputs and outputs in qbruntime's (h, w, c) layout; -1 marks the
    dynamic token axis (a last-token-only decoder returns one row of logits)."""
    positions, d = config.max_source_positions, config.d_model
    if part == "encoder":
        return {"input_shapes": [[1, 2 * positions, config.num_mel_bins]], "output_shapes": [[1, positions, d]]}
    rows = 1 if last_token_only else -1
    return {"input_shapes": [[1, -1, d], [1, positions, d]], "output_shapes": [[1, rows, config.vocab_size]]}


def _parse(model, part: str, target: str, save_path, record: dict) -> None:
    if not hasattr(model, "model") or not hasattr(model.model, part):
        raise TypeError(f"mblt_compile: model has no .model.{part}")
    config = model.config
    _record(
        "mblt_compile",
        mblt_save_path=str(save_path),
        model_class=type(model).__name__,
        d_model=config.d_model,
        num_mel_bins=config.num_mel_bins,
        training=model.training,
        dtype=str(next(model.parameters()).dtype),
        **record,
    )
    last_only = bool((record.get("model_part_options") or {}).get("last_token_only"))
    fake_mxq.write(save_path, {"part": part, "target_device": target, **_io_shapes(config, part, last_only)})


if GENERATION >= (1, 3):

    def mblt_compile(
        model,
        mblt_save_path,
        backend="onnx",
        *,
        target_device=None,
        feed_dict=None,
        dynamic_axes=None,
        model_part=None,
        model_part_options=None,
        multi_shape=None,
        cpu_offload=False,
    ):
        target = _target(target_device, required=True)
        if backend not in BACKENDS:
            raise ValueError(f"mblt_compile: unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
        from .model_dict.parser.patcher.parts import available_parts

        parts = available_parts(model)
        if model_part is None:  # a model that declares several parts needs the name
            raise ValueError(f"mblt_compile: model declares parts {parts}: pass model_part")
        if model_part not in parts:
            raise ValueError(f"mblt_compile: unknown model_part {model_part!r} (one of {parts})")
        if model_part == "encoder" and not (feed_dict and "input_features" in feed_dict):
            raise ValueError("mblt_compile: the encoder part is traced from feed_dict['input_features']")
        if model_part_options and set(model_part_options) - {"last_token_only"}:
            raise ValueError(f"mblt_compile: unknown model_part_options {sorted(model_part_options)}")
        _parse(
            model,
            model_part,
            target,
            mblt_save_path,
            {
                "backend": backend,
                "target_device": target,
                "model_part": model_part,
                "model_part_options": model_part_options,
                "feed_dict": feed_dict,
                "dynamic_axes": dynamic_axes,
            },
        )

else:

    def mblt_compile(model, mblt_save_path, backend, target, device="cpu", feed_dict=None, **kwargs):
        extra = set(kwargs) - ({"target_device"} if TARGET_DEVICES else set())
        if extra:
            raise TypeError(f"mblt_compile() got an unexpected keyword argument {sorted(extra)[0]!r}")
        target_device = _target(kwargs.get("target_device"), required=False)
        if backend not in BACKENDS:
            raise ValueError(f"mblt_compile: unknown backend {backend!r}")
        _parse(
            model,
            target,
            target_device,
            mblt_save_path,
            {
                "backend": backend,
                "target": target,
                "device": device,
                "feed_dict": feed_dict,
                "target_device": kwargs.get("target_device"),
            },
        )


# --- quantizing: .mblt + calibration -> .mxq --------------------------------------------------
def _fits(want: list[int], got: tuple) -> bool:
    return len(want) == len(got) and all(w in (-1, g) for w, g in zip(want, got))


def _read_calibration(calib_data_path: str, graph_inputs: list[list[int]]) -> list[dict]:
    """Open every file the calibration list or JSON names; return what was read."""
    seen = []
    if calib_data_path.endswith(".txt"):
        with open(calib_data_path, encoding="utf-8") as f:
            groups = [[line.strip()] for line in f if line.strip()]
    else:
        with open(calib_data_path, encoding="utf-8") as f:
            calib = json.load(f)
        groups = calib["calib paths"]
        names = calib["info"]["input names"]
        if names != ["decoder_hidden_states", "encoder_hidden_states"]:
            raise ValueError(f"{calib_data_path}: input names {names}")
    for group in groups:
        if len(group) != len(graph_inputs):
            raise ValueError(f"calibration sample {group} has {len(group)} inputs, the graph {len(graph_inputs)}")
        for path, want in zip(group, graph_inputs):
            if not os.path.isabs(path):
                raise ValueError(f"calibration path is not absolute: {path}")
            arr = np.load(path, allow_pickle=False)
            if arr.dtype != np.float32 or not np.all(np.isfinite(arr)):
                raise ValueError(f"{path}: {arr.dtype}, finite={np.all(np.isfinite(arr))}")
            if not _fits(want, arr.shape):
                raise ValueError(f"{path}: shape {arr.shape} does not fit the graph input {want}")
            seen.append({"path": path, "shape": list(arr.shape)})
    if not seen:
        raise ValueError(f"{calib_data_path}: no calibration data")
    return seen


def _check_configs(given: dict) -> None:
    """Config keywords this generation knows, each an object of its class."""
    known = {"llm_config": None} if GENERATION < (1, 1) else dict(configs.KEYWORDS)
    for key, value in given.items():
        if key not in known:
            raise TypeError(f"mxq_compile() got an unexpected keyword argument {key!r}")
        cls = known[key]
        if value is not None and cls is not None and not isinstance(value, cls):
            raise TypeError(f"mxq_compile: {key} must be a {cls.__qualname__}, not {type(value).__name__}")


def mxq_compile(
    model,
    calib_data_path,
    save_path,
    device="gpu" if GENERATION >= (1, 1) else "cuda",
    inference_scheme=None,
    target_device=None,
    **config_objects,
):
    if target_device is not None and not TARGET_DEVICES:
        raise TypeError("mxq_compile() got an unexpected keyword argument 'target_device'")
    target = _target(target_device, required=GENERATION >= (1, 3))
    if device not in DEVICES:
        raise ValueError(f"mxq_compile: device {device!r} (qbcompiler {__version__} takes {' or '.join(DEVICES)})")
    if inference_scheme is not None and inference_scheme not in SCHEMES:
        raise ValueError(f"mxq_compile: unknown inference_scheme {inference_scheme!r}")
    if target.startswith("regulus") and inference_scheme not in (None, "single"):
        raise ValueError(f"REGULUS supports only inference_scheme='single', not {inference_scheme!r}")
    _check_configs(config_objects)
    graph = fake_mxq.read(model)
    if graph["target_device"] != target:
        raise ValueError(f"{model}: parsed for {graph['target_device']}, compiling for {target}")
    if (graph["part"] == "decoder") != str(calib_data_path).endswith(".json"):
        raise ValueError(f"{model}: a {graph['part']} graph cannot calibrate from {calib_data_path}")
    seen = _read_calibration(str(calib_data_path), graph["input_shapes"])
    _record(
        "mxq_compile",
        model=str(model),
        calib_data_path=str(calib_data_path),
        save_path=str(save_path),
        device=device,
        inference_scheme=inference_scheme,
        target_device=target_device,
        calibration_files=seen,
        **{"llm_config": None, **config_objects},
    )
    # A fault to inject for tests of what checks the binary: its inputs as given here.
    inputs = json.loads(os.environ.get("QBCOMPILER_DOUBLE_MXQ_INPUTS", "null")) or graph["input_shapes"]
    fake_mxq.write(
        save_path,
        {
            "part": graph["part"],
            "target_device": target,
            "inference_scheme": inference_scheme,
            "input_shapes": inputs,
            "output_shapes": graph["output_shapes"],
            "calibration_files": len(seen),
            "compiler": __version__,
        },
    )


# --- the LLM config, as each release spells it ----------------------------------------------
if GENERATION < (1, 0):

    def get_llm_config(use_full_seq_len_calib=False):
        return {"generation": "0.12", "use_full_seq_len_calib": use_full_seq_len_calib}

elif GENERATION < (1, 1):

    def get_llm_config(llm_config_apply=False, use_full_seq_length=False):
        return {"generation": "1.0", "apply": llm_config_apply, "use_full_seq_length": use_full_seq_length}

else:
    from . import configs
    from .configs import (  # noqa: F401  (1.3 scripts import them from the top level too)
        BitConfig,
        CalibrationConfig,
        EquivalentTransformationConfig,
        LlmConfig,
        SearchWeightScaleConfig,
    )
