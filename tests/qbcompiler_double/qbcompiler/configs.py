"""qbcompiler.configs as the test double imitates it (1.1 and later).

qbcompiler's config objects are Pydantic models: nested option groups are classes inside
the class (`BitConfig.Transformer.MixedPrecision.Activation`), a nested dict is accepted
where such a class is expected, fields take their camelCase alias too (`actOrder` for
`act_order`), and an unknown field or a wrong type raises a ValueError naming the
field's path. The field sets are those Mobilint's public scripts and compile-config guide
use; `HessianQuantConfig` first appears in the 1.3 scripts.
"""

from __future__ import annotations

from . import GENERATION

if GENERATION < (1, 1):  # 0.12 and 1.0 have get_llm_config and no configs module
    raise ModuleNotFoundError("No module named 'qbcompiler.configs'", name="qbcompiler.configs")


class ValidationError(ValueError):
    """Pydantic's ValidationError is a ValueError; its message names the field path."""

    def __init__(self, model: str, path: str, message: str):
        self.path = path
        super().__init__(f"1 validation error for {model}\n{path}\n  {message}")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class Config:
    """A strict, Pydantic-like model: `FIELDS` maps each field to its type (bool, int,
    float, str, list or a nested Config class); every field defaults to None."""

    FIELDS: dict = {}

    def __init__(self, **data):
        values = {}
        aliases = {_camel(f): f for f in self.FIELDS}
        for key, value in data.items():
            name = key if key in self.FIELDS else aliases.get(key)
            if name is None:
                raise ValidationError(type(self).__qualname__, key, "Extra inputs are not permitted")
            values[name] = _coerce(type(self), name, self.FIELDS[name], value)
        self._values = values

    def __getattr__(self, name):
        if name.startswith("_") or name not in type(self).FIELDS:
            raise AttributeError(name)
        return self._values.get(name)

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Config) else v for k, v in self._values.items()}


def _coerce(owner, name: str, kind, value):
    if value is None:
        return None
    if isinstance(kind, type) and issubclass(kind, Config):
        if isinstance(value, kind):
            return value
        if isinstance(value, dict):
            try:
                return kind(**value)
            except ValidationError as e:  # report the full path, as Pydantic does
                raise ValidationError(
                    owner.__qualname__, f"{name}.{e.path}", str(e).split("\n", 2)[2].strip()
                ) from None
        raise ValidationError(
            owner.__qualname__, name, f"Input should be a valid dictionary or instance of {kind.__qualname__}"
        )
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        raise ValidationError(owner.__qualname__, name, f"Input should be a valid {kind.__name__}")
    return value


def _switch(**extra):
    """An option group with an `apply` switch (most EquivalentTransformation members)."""
    return type("Switch", (Config,), {"FIELDS": {"apply": bool, "learn": bool, **extra}})


class CalibrationConfig(Config):
    class MaxPercentile(Config):
        FIELDS = {"percentile": float, "topk_ratio": float}

    FIELDS = {"method": int, "output": int, "mode": int, "max_percentile": MaxPercentile}


class EquivalentTransformationConfig(Config):
    NormConv = _switch()
    Qk = _switch()
    Ud = _switch(smoothing_factor=float)
    Vo = _switch()
    FeedForwardMultiLut = _switch()
    SpinR1 = _switch()
    SpinR2 = _switch()
    QkRotation = _switch()
    FlattenQuant = _switch()
    OptimizeFfn = _switch(ch_per_ffn=int)
    HeadOutChRotation = _switch(matrix_path=str)
    FIELDS = {
        "norm_conv": NormConv,
        "qk": Qk,
        "ud": Ud,
        "vo": Vo,
        "feed_forward_multi_lut": FeedForwardMultiLut,
        "spin_r1": SpinR1,
        "spin_r2": SpinR2,
        "qk_rotation": QkRotation,
        "flatten_quant": FlattenQuant,
        "optimize_ffn": OptimizeFfn,
        "head_out_ch_rotation": HeadOutChRotation,
    }


for _name in (
    "NormConv",
    "Qk",
    "Ud",
    "Vo",
    "FeedForwardMultiLut",
    "SpinR1",
    "SpinR2",
    "QkRotation",
    "FlattenQuant",
    "OptimizeFfn",
    "HeadOutChRotation",
):
    getattr(EquivalentTransformationConfig, _name).__qualname__ = f"EquivalentTransformationConfig.{_name}"


class BitConfig(Config):
    class Transformer(Config):
        class Weight(Config):
            FIELDS = {k: int for k in ("query", "key", "value", "output", "ffn", "head")}

        class MixedPrecision(Config):
            class Activation(Config):
                FIELDS = {"apply": bool}

            FIELDS = {"activation": Activation}

        FIELDS = {"weight": Weight, "mixed_precision": MixedPrecision}

    class LayerOverrides(Config):
        FIELDS = {"activation_16bits": list, "weight_16bits": list}

    FIELDS = {"transformer": Transformer, "layer_overrides": LayerOverrides}


class LlmConfig(Config):
    class Attributes(Config):
        class Calibration(Config):
            FIELDS = {"use_full_seq_length": bool}

        class Runtime(Config):
            FIELDS = {"batch_size": int, "npu_core_ids": list, "dynamic_rope": bool}

        FIELDS = {
            "max_data_length": int,
            "max_sequence_length": int,
            "max_cache_length": int,
            "max_core_data_length": int,
            "calibration": Calibration,
            "runtime": Runtime,
        }

    FIELDS = {"apply": bool, "attributes": Attributes}


class SearchWeightScaleConfig(Config):
    class Transformer(Config):
        FIELDS = {k: bool for k in ("query", "key", "value", "out", "ffn")}

    FIELDS = {"apply": bool, "transformer": Transformer}


class HessianQuantConfig(Config):
    class Attributes(Config):
        FIELDS = {"act_order": bool, "block_size": int, "perc_damp": float}

    FIELDS = {"apply": bool, "attributes": Attributes}


# mxq_compile keyword -> class, per generation
KEYWORDS = {
    "calibration_config": CalibrationConfig,
    "equivalent_transformation_config": EquivalentTransformationConfig,
    "bit_config": BitConfig,
    "llm_config": LlmConfig,
    "search_weight_scale_config": SearchWeightScaleConfig,
}
if GENERATION >= (1, 3):
    KEYWORDS["hessian_quant_config"] = HessianQuantConfig
else:
    del HessianQuantConfig
