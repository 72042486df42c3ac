"""What each part is compiled with: target board, recipe, scheme and config objects.

Plain data, no qbcompiler: the compile rules resolve it while Snakemake parses the
workflow (so bad settings fail before any job), the compile jobs resolve it again and
build qbcompiler objects from it, and the bundle reads the schemes back.

Recipes:

- `tutorial`: the calls of Mobilint's STT tutorial as the workflow first reproduced it
  (qbcompiler 1.0.1): encoder scheme `global4`, decoder with the LLM config's
  full-sequence-length calibration and no scheme. On REGULUS, their REGULUS scripts of
  that time: `single` for both parts, the same LLM config.
- `mobilint-1.3`: the settings of Mobilint's current `compile_config.py` for the chosen
  board: scheme `all` (ARIES) or `single` (REGULUS), calibration, equivalent
  transformation, mixed-precision activation bits, Hessian quantization and the LLM
  config (sequence and cache length 1024 on REGULUS).

Config objects are written as nested dicts keyed by mxq_compile's keyword
(`bit_config: {transformer: {...}}`); `compile.<part>.configs` merges over the recipe's
(a keyword set to null drops the recipe's object).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

TARGETS = ("aries-rb", "regulus-rb")
RECIPES = ("tutorial", "mobilint-1.3")
PARTS = ("encoder", "decoder")
SCHEMES = ("single", "multi", "global4", "global8", "all")
# REGULUS runs one scheme, and Mobilint caps the decoder's sequence and KV cache there.
REGULUS_SCHEMES = ("single",)
REGULUS_MAX_LENGTH = 1024
FROM_RECIPE = "recipe"  # compile.<part>.inference_scheme: take the recipe's


class ConfigError(ValueError):
    """A bad compile setting; the message starts with the config key."""

    def __init__(self, key: str, message: str):
        super().__init__(f"config key {key!r}: {message}")


@dataclass(frozen=True)
class PartPlan:
    part: str
    target_device: str
    recipe: str
    scheme: str | None  # None: not passed, qbcompiler's default
    configs: dict = field(default_factory=dict)  # mxq_compile keyword -> nested dict

    @property
    def key(self) -> str:
        return f"compile.{self.part}"


# --- the recipes ----------------------------------------------------------------------------
def _full_seq_llm(full_seq: bool, **attributes) -> dict:
    return {"apply": True, "attributes": {**attributes, "calibration": {"use_full_seq_length": full_seq}}}


def _tutorial(target: str, part: str, full_seq: bool) -> tuple[str | None, dict]:
    regulus = target == "regulus-rb"
    if part == "encoder":
        return ("single" if regulus else "global4"), {}
    configs = {"llm_config": _full_seq_llm(True)} if full_seq else {}
    return ("single" if regulus else None), configs


def _equivalent_transformation() -> dict:
    learn = {"apply": True, "learn": True}
    return {
        "norm_conv": learn,
        "qk": {"apply": True},
        "ud": learn,
        "vo": {"apply": True},
        "feed_forward_multi_lut": {"apply": True},
        "spin_r2": learn,
        "qk_rotation": {"apply": True},
        "flatten_quant": learn,
        "optimize_ffn": {"apply": True, "ch_per_ffn": -1},
    }


def _mobilint_13(target: str, part: str, full_seq: bool) -> tuple[str, dict]:
    """Mobilint's compile_config.py (STT), for both boards."""
    regulus = target == "regulus-rb"
    configs = {
        "equivalent_transformation_config": _equivalent_transformation(),
        "bit_config": {"transformer": {"mixed_precision": {"activation": {"apply": True}}}},
    }
    if part == "decoder":
        lengths = {"max_sequence_length": REGULUS_MAX_LENGTH, "max_cache_length": REGULUS_MAX_LENGTH}
        configs.update(
            calibration_config={"output": 0, "mode": 0},
            llm_config=_full_seq_llm(full_seq, **(lengths if regulus else {})),
            hessian_quant_config={
                "apply": True,
                "attributes": {"act_order": True, "block_size": 128, "perc_damp": 0.01},
            },
        )
    return ("single" if regulus else "all"), configs


_RECIPES = {"tutorial": _tutorial, "mobilint-1.3": _mobilint_13}


# --- resolving a config block -----------------------------------------------------------------
def merge(base: dict, override: dict) -> dict:
    """`override` over `base`, nested dicts merged key by key; None deletes a key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def plan(compile_cfg: dict, part: str) -> PartPlan:
    """The settings `part` is compiled with, from the workflow's `compile:` block."""
    target = compile_cfg.get("target_device", "aries-rb")
    recipe = compile_cfg.get("recipe", "tutorial")
    if target not in TARGETS:
        raise ConfigError("compile.target_device", f"{target!r} is not one of {', '.join(TARGETS)}")
    if recipe not in RECIPES:
        raise ConfigError("compile.recipe", f"{recipe!r} is not one of {', '.join(RECIPES)}")
    block = compile_cfg.get(part) or {}
    full_seq = bool(compile_cfg.get("decoder", {}).get("full_seq_length_calibration", True))
    scheme, configs = _RECIPES[recipe](target, part, full_seq)
    chosen = block.get("inference_scheme", FROM_RECIPE)
    if chosen != FROM_RECIPE:
        scheme = chosen
    configs = merge(configs, block.get("configs") or {})
    result = PartPlan(part, target, recipe, scheme, configs)
    check_board(result)
    return result


def plans(compile_cfg: dict) -> dict[str, PartPlan]:
    return {part: plan(compile_cfg, part) for part in PARTS}


def check_board(p: PartPlan) -> None:
    """What a board cannot run, refused before any job."""
    if p.scheme is not None and p.scheme not in SCHEMES:
        raise ConfigError(f"{p.key}.inference_scheme", f"{p.scheme!r} is not one of {', '.join(SCHEMES)}")
    if p.target_device.startswith("regulus"):
        if p.scheme not in REGULUS_SCHEMES:
            raise ConfigError(
                f"{p.key}.inference_scheme",
                f"{p.target_device} runs only the single scheme, not {p.scheme!r} (recipe {p.recipe})",
            )
        for name in ("max_sequence_length", "max_cache_length"):
            value = llm_attribute(p, name)
            if value is not None and value > REGULUS_MAX_LENGTH:
                raise ConfigError(
                    f"{p.key}.configs.llm_config.attributes.{name}",
                    f"{value} is over REGULUS's {REGULUS_MAX_LENGTH} positions",
                )


def llm_attribute(p: PartPlan, name: str) -> int | None:
    value = ((p.configs.get("llm_config") or {}).get("attributes") or {}).get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{p.key}.configs.llm_config.attributes.{name}", f"expected a whole number, got {value!r}")
    return value


def check_positions(p: PartPlan, positions: int, what: str) -> None:
    """The decoder's token positions (`what` says where the number comes from) must fit
    the LLM config's sequence and cache lengths, and REGULUS's cap."""
    if p.part != "decoder":
        return
    if p.target_device.startswith("regulus") and positions > REGULUS_MAX_LENGTH:
        raise ConfigError("model", f"{what} is {positions}, over {p.target_device}'s {REGULUS_MAX_LENGTH} positions")
    for name in ("max_sequence_length", "max_cache_length"):
        value = llm_attribute(p, name)
        if value is not None and value < positions:
            raise ConfigError(
                f"{p.key}.configs.llm_config.attributes.{name}",
                f"{value} is shorter than the decoder's {what} ({positions})",
            )
