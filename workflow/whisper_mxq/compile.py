"""Step 3: qbcompiler (Mobilint's proprietary SDK): model -> .mblt -> .mxq.

qbcompiler is not on PyPI. Without it a compile job fails at once with the message
below, and never writes a placeholder .mblt/.mxq. Its API moved between releases; what
the installed one offers is detected, not assumed:

| release | LLM config | parse (mblt_compile) | target_device | mxq device |
| --- | --- | --- | --- | --- |
| 0.12 | get_llm_config(use_full_seq_len_calib=True) | backend torch (encoder) / hf (decoder) | none (ARIES) | cuda |
| 1.0.x | get_llm_config(llm_config_apply=True, use_full_seq_length=True) | as 0.12 | none (ARIES) | cuda |
| 1.1.x | configs.LlmConfig and other config objects | backend hf, encoder with a feed_dict | aries2, regulus2 | gpu |
| 1.2.x | as 1.1 | as 1.1 | aries-rb, regulus-rb | gpu |
| 1.3+ | as 1.1 | load_for_part + model_part, backend torch (hf removed) | aries-rb, regulus-rb | gpu |

What is compiled (recipe, scheme, config objects) comes from compile_recipes.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from . import atomic
from .compile_recipes import ConfigError, PartPlan, check_positions, plan

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "qbcompiler (Mobilint's NPU compiler SDK) is not installed in this Python environment. "
    "It is not on PyPI: download the qbcompiler wheel (the tutorial uses 1.0.1) for your "
    "platform from Mobilint's release page https://dl.mobilint.com/releases?series-id=1 and "
    "`pip install qbcompiler-<version>-<platform>.whl` into the environment that runs "
    "Snakemake (or point --use-conda at envs/qbcompiler.yaml after putting the wheel beside "
    "it), or run the workflow inside Mobilint's `mobilint/qbcompiler` Docker image."
)
PARTS_MODULE = "qbcompiler.model_dict.parser.patcher.parts"


class QbcompilerMissing(RuntimeError):
    pass


def import_qbcompiler():
    try:
        return importlib.import_module("qbcompiler")
    except ImportError as e:
        raise QbcompilerMissing(f"{INSTALL_HINT} (import failed: {e})") from None


def installed() -> bool:
    """Whether qbcompiler can be imported here, without importing it."""
    return importlib.util.find_spec("qbcompiler") is not None


def _version(qb) -> tuple[int, ...]:
    parts = []
    for piece in str(getattr(qb, "__version__", "0")).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


# --- what the installed release offers --------------------------------------------------------
@dataclass(frozen=True)
class Api:
    version: tuple[int, ...]
    configs: object | None  # the qbcompiler.configs module (1.1+)
    load_for_part: object | None  # 1.3+: parse one part, backend "torch"
    target_device: bool  # mblt_compile/mxq_compile take target_device=

    @property
    def label(self) -> str:
        return ".".join(map(str, self.version))


def _optional_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        return None


def _takes(fn, name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def api(qb) -> Api:
    parts = _optional_module(PARTS_MODULE)
    return Api(
        version=_version(qb),
        configs=_optional_module("qbcompiler.configs"),
        load_for_part=getattr(parts, "load_for_part", None),
        target_device=_takes(qb.mxq_compile, "target_device") and _version(qb) >= (1, 1),
    )


def device_name(a: Api, setting: str) -> str:
    """`compile.device` as the release spells a GPU: "cuda" up to 1.0, "gpu" after."""
    if setting == "cpu":
        return "cpu"
    return "gpu" if a.version >= (1, 1) else "cuda"


def target_name(a: Api, target: str) -> str | None:
    """The board as the release names it; None where the release has no target_device
    (those compile for ARIES only)."""
    if not a.target_device:
        if target != "aries-rb":
            raise ConfigError(
                "compile.target_device",
                f"qbcompiler {a.label} compiles for ARIES only (no target_device); {target} needs 1.1 or later",
            )
        return None
    if a.version < (1, 2):  # 1.1 named the boards by chip; 1.2 refuses those names
        return {"aries-rb": "aries2", "regulus-rb": "regulus2"}[target]
    return target


# --- config objects ---------------------------------------------------------------------------
def _pascal(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _spelled(cls, name: str) -> str:
    """A field under the name the installed class declares: the 1.3 scripts write
    `actOrder`, later ones `act_order`; Pydantic classes list their names and aliases."""
    fields = getattr(cls, "model_fields", None)
    if not isinstance(fields, dict):
        return name
    known = set(fields) | {f.alias for f in fields.values() if getattr(f, "alias", None)}
    if name in known:
        return name
    return next((n for n in (_camel(name), _snake(name)) if n in known), name)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _build(cls, data: dict, key: str):
    """`cls(**data)`, nested dicts built as the classes nested in `cls` of the same name
    (`transformer` -> `BitConfig.Transformer`)."""
    if not isinstance(data, dict):
        raise ConfigError(key, f"expected a mapping of {cls.__qualname__} fields, got {data!r}")
    kwargs = {}
    for name, value in data.items():
        nested = getattr(cls, _pascal(name), None)
        if isinstance(value, dict) and isinstance(nested, type):
            value = _build(nested, value, f"{key}.{name}")
        kwargs[_spelled(cls, name)] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:  # Pydantic's ValidationError is a ValueError
        raise ConfigError(key, f"{cls.__qualname__} refuses it: {e}") from None


def _legacy_llm_config(qb, a: Api, spec: dict, key: str):
    """0.12/1.0: only the tutorial's full-sequence-length LLM config has a spelling."""
    full_seq = spec.get("attributes", {}).get("calibration", {}).get("use_full_seq_length")
    if spec != {"apply": True, "attributes": {"calibration": {"use_full_seq_length": full_seq}}}:
        raise ConfigError(key, f"qbcompiler {a.label} offers only get_llm_config(full-sequence calibration)")
    params = inspect.signature(qb.get_llm_config).parameters
    if "use_full_seq_len_calib" in params:  # 0.12
        return qb.get_llm_config(use_full_seq_len_calib=bool(full_seq))
    return qb.get_llm_config(llm_config_apply=True, use_full_seq_length=bool(full_seq))  # 1.0.x


def build_configs(qb, a: Api, p: PartPlan) -> dict:
    """mxq_compile keyword -> qbcompiler object, for every config `p` asks for."""
    built = {}
    for keyword, spec in p.configs.items():
        key = f"{p.key}.configs.{keyword}"
        if a.configs is None:
            if keyword != "llm_config" or getattr(qb, "get_llm_config", None) is None:
                raise ConfigError(key, f"qbcompiler {a.label} has no qbcompiler.configs (1.1 and later have)")
            built[keyword] = _legacy_llm_config(qb, a, spec, key)
            continue
        cls = getattr(a.configs, _pascal(keyword), None) if keyword.endswith("_config") else None
        if not isinstance(cls, type):
            raise ConfigError(key, f"qbcompiler {a.label} has no qbcompiler.configs.{_pascal(keyword)}")
        built[keyword] = _build(cls, spec, key)
    return built


def check_release(a: Api, p: PartPlan) -> None:
    if p.recipe == "mobilint-1.3" and a.version < (1, 3):
        raise ConfigError("compile.recipe", f"mobilint-1.3 needs qbcompiler 1.3 or later (installed: {a.label})")
    target_name(a, p.target_device)


def check_installed(out_json: str, plans: dict[str, PartPlan]) -> dict:
    """The compile's first job: qbcompiler importable (else the install hint, at once),
    and what this release offers for the configured recipe and board, recorded."""
    qb = import_qbcompiler()
    a = api(qb)
    for p in plans.values():
        check_release(a, p)
    found = {
        "qbcompiler": a.label,
        "configs": a.configs is not None,
        "load_for_part": a.load_for_part is not None,
        "target_device": a.target_device,
        "device_gpu_spelling": device_name(a, "cuda"),
    }
    atomic.write_json(out_json, found)
    return found


def validate_installed(plans: dict[str, PartPlan]) -> None:
    """Every setting against the installed qbcompiler, before any job: an unknown config
    class or field fails naming its key. A no-op where qbcompiler is not importable."""
    if not installed():
        return
    qb = import_qbcompiler()
    a = api(qb)
    for p in plans.values():
        check_release(a, p)
        build_configs(qb, a, p)


# --- parsing: model -> .mblt ------------------------------------------------------------------
def mblt_inputs(a: Api, p: PartPlan, snapshot: str) -> tuple[object, dict]:
    """The model object and mblt_compile's keywords for this part and release."""
    import torch

    from .models import shapes

    s = shapes(snapshot)
    feed = {"input_features": torch.zeros(1, s.n_mels, s.n_frames)}
    if a.load_for_part is not None:
        return _part_parse(a, p, snapshot, feed)
    return _whole_model_parse(a, p, snapshot, feed)


def _part_parse(a: Api, p: PartPlan, snapshot: str, feed: dict) -> tuple[object, dict]:
    """1.3+: the part loaded by qbcompiler itself, parsed with backend "torch"."""
    import torch

    model = a.load_for_part(snapshot, p.part, dtype=torch.float32, device=torch.device("cpu"))
    kwargs = {"model_part": p.part, "backend": "torch", "target_device": target_name(a, p.target_device)}
    if p.part == "encoder":
        kwargs["feed_dict"] = feed
        return model, kwargs
    kwargs["dynamic_axes"] = {"inputs_embeds": [1], "cache_position": [0]}  # the token axis varies
    if p.recipe == "mobilint-1.3":  # Mobilint's decoder script: logits of the last token only
        kwargs["model_part_options"] = {"last_token_only": True}
    return model, kwargs


def _whole_model_parse(a: Api, p: PartPlan, snapshot: str, feed: dict) -> tuple[object, dict]:
    """Up to 1.2: the whole float32 model, the part named by `target`; the decoder with
    backend "hf", the encoder with "torch" (1.0) or "hf" and a feed_dict (1.1+)."""
    from .models import load_model

    kwargs: dict = {"target": p.part, "device": "cpu"}
    target = target_name(a, p.target_device)
    if target is not None:
        kwargs["target_device"] = target
    if p.part == "decoder":
        kwargs["backend"] = "hf"
    elif a.version < (1, 1):
        kwargs["backend"] = "torch"
    else:
        kwargs.update(backend="hf", feed_dict=feed)
    return load_model(snapshot, "cpu"), kwargs


def compile_mblt(snapshot: str, part: str, out_path: str, compile_cfg: dict | None = None) -> None:
    """Parse the float32 model's encoder or decoder into the .mblt graph."""
    qb = import_qbcompiler()
    a = api(qb)
    p = plan(compile_cfg or {}, part)
    check_release(a, p)
    model, kwargs = mblt_inputs(a, p, snapshot)
    log.info(
        "qbcompiler %s: mblt_compile(%s)",
        a.label,
        ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "feed_dict"),
    )
    with atomic.atomic_path(out_path) as tmp:
        qb.mblt_compile(model=model, mblt_save_path=str(tmp), **kwargs)
        _require_written(tmp, "mblt_compile")


# --- quantizing: .mblt + calibration -> .mxq --------------------------------------------------
def mxq_kwargs(qb, a: Api, p: PartPlan, device: str) -> dict:
    kwargs: dict = {"device": device_name(a, device)}
    target = target_name(a, p.target_device)
    if target is not None:
        kwargs["target_device"] = target
    if p.scheme:
        kwargs["inference_scheme"] = p.scheme
    kwargs.update(build_configs(qb, a, p))
    return kwargs


def compile_mxq(mblt_path: str, calib_path: str, part: str, out_path: str, *, compile_cfg: dict, device: str) -> None:
    """Quantize the .mblt with the calibration list/JSON into the NPU binary; before it
    takes its final name, its input shapes are checked against the calibration's."""
    qb = import_qbcompiler()
    a = api(qb)
    p = plan(compile_cfg, part)
    check_release(a, p)
    require_listed_files(calib_path)
    if part == "decoder":
        check_positions(p, longest_calibration_sequence(calib_path), "longest calibration sequence")
    kwargs = mxq_kwargs(qb, a, p, device)
    shown = {k: p.configs.get(k, v) for k, v in kwargs.items()}  # objects as their settings
    log.info("qbcompiler %s: mxq_compile(%s)", a.label, ", ".join(f"{k}={v!r}" for k, v in shown.items()))
    with atomic.atomic_path(out_path) as tmp:
        qb.mxq_compile(model=str(mblt_path), calib_data_path=os.path.abspath(calib_path), save_path=str(tmp), **kwargs)
        _require_written(tmp, "mxq_compile")
        from .mxq_check import check_inputs

        check_inputs(str(tmp), calib_path, part)


def require_listed_files(calib_path: str) -> None:
    """Every file the calibration list or JSON names is there: a per-sample file deleted
    after its job ran leaves the lists naming it, and qbcompiler would fail hours in."""
    if calib_path.endswith(".txt"):
        from .encoder_calibration import read_encoder_list

        paths = read_encoder_list(calib_path)
    else:
        paths = [p for pair in atomic.read_json(calib_path)["calib paths"] for p in pair]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"{calib_path} names {len(missing)} file(s) that are gone, e.g. {missing[0]}: "
            "`snakemake calibration` makes them again"
        )


def longest_calibration_sequence(decoder_json: str) -> int:
    """The most tokens any decoder calibration sample holds (read from .npy headers)."""
    from .mxq_check import npy_shape

    calib = atomic.read_json(decoder_json)
    return max(npy_shape(group[0])[-2] for group in calib["calib paths"])


def _require_written(tmp: Path, call: str) -> None:
    # qbcompiler reports some failures by printing and returning; an empty file must not
    # pass for a compiled model.
    if not tmp.exists() or tmp.stat().st_size == 0:
        raise RuntimeError(f"qbcompiler.{call} returned without writing {tmp}")
