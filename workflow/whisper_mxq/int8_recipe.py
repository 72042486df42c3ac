"""An INT8 recipe a trained Whisper survives, on ONNX Runtime's own static quantizer.

Static per-tensor INT8 of every Conv/MatMul/Gemm (`naive`, the workflow's first
backend) is harmless on a random model and ruinous on a trained one (OpenAI's tiny.en:
encoder SQNR 2.8 dB, held-out WER 0.16 -> 0.74; `default`: 28.3 dB, 0.16 -> 0.16).
Three things break it:

- MatMuls whose both inputs are activations (attention: Q x K^T, probabilities x V).
  Neither side has weights whose per-channel scales could absorb its range, and the
  softmax probabilities over up to 1500 positions mostly fall below one int8 step.
- Inputs with outliers. Whisper's fc2 inputs carry single "massive" values (~560 at one
  position of one channel in tiny.en's last encoder layer) next to values below 1: the
  step that covers the outlier rounds the rest away. Over the whole tensor the outlier's
  own energy hides this (31 dB), so the test looks at the typical values: those up to
  the 99.9th percentile of |x| (`int8_bulk_sqnr_db`: 14.6 dB there).
- Requantizing a compute node's output to int8. The exported graphs split Linear into
  MatMul + Add(bias), and ORT's QDQ format quantizes the MatMul's output before the bias
  is added; where the bias cancels most of the product (fc2), int8 there costs the
  encoder ~20 dB. An integer kernel adds the bias to its int32 accumulator first.

`default` therefore decides from the graph and the calibration data, never from node
names, with ORT's per-tensor `TensorQuantOverrides`:
- the inputs of every MatMul of two activations: 16-bit (QInt16);
- every other compute input whose typical values keep less than MIN_INT8_SQNR_DB
  through int8 at its calibrated range: 16-bit; an input that not even 16 bits serve
  leaves its node in float (`nodes_to_exclude`);
- every compute node's output: requantized to 16 bits, not 8. Leaving outputs
  unquantized instead (OpTypesToExcludeOutputQuantization) makes onnxruntime 1.32's
  MatMulAddFusion build an invalid graph when 16-bit inputs are present;
- weights: int8 per output channel (ORT's per_channel);
- everything else as `naive`: signed int8 activations, QDQ, ORT's calibration method.
On tiny.en the 16-bit inputs are those of the attention MatMuls, every encoder fc2 input
(15-26 dB), the decoder's first fc2 input (15 dB) and a few inputs near the threshold
(conv2's, the decoder's first self-attention projections, 25-28 dB); the other inputs
(layer-norm outputs, attention context) keep 29-37 dB. 25 dB instead of 28 gave the
encoder 22.7 dB SQNR on average but 16 dB on its worst held-out clip; 28 dB gives
28.3 dB and 25 dB at worst.

SmoothQuant is not used. ORT's `SmoothQuant` option imports neural-compressor's ONNX
adaptor, which neural-compressor 3.x no longer ships; 2.6 has it but pulls opencv,
pycocotools, scikit-learn and schema (a ~200 MB environment), and on the workflow's
encoder graph it fails: it takes the last axis of the Conv inputs ([1, C, 3000]) as
their channel axis. 16-bit activations on the few outlier inputs reach the accuracy goal
without it.

`node_sensitivity` compares every compute node's output in the INT8 model with the same
tensor of the FP32 model on given feeds (cumulative: upstream quantization included),
the per-node table for the report.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RECIPES = ("naive", "default")
METHODS = ("minmax", "entropy", "percentile")
COMPUTE_OPS = ("Conv", "MatMul", "Gemm")
# An input whose typical values (up to the BULK_QUANTILE of |x|) keep less signal than
# this over int8 rounding noise, at the range calibration gives the whole tensor, goes
# 16-bit; one that not even 16 bits serve keeps its node in float.
MIN_INT8_SQNR_DB = 28.0
BULK_QUANTILE = 0.999
# Calibration feeds the statistics pass reads at most (spread over the whole set), and
# values kept per tensor and feed for the round-trip test (a strided sample).
STATS_FEEDS = 32
VALUES_PER_FEED = 1 << 16


# --- the graph ------------------------------------------------------------------------
@dataclass
class ComputeNode:
    name: str
    op_type: str
    activations: list[str]  # inputs computed at run time (the data inputs)
    weights: list[str]  # constant data inputs (initializers, Constant outputs)
    attrs: dict[str, Any] = field(default_factory=dict)


def _constants(graph) -> set[str]:
    names = {t.name for t in graph.initializer}
    names |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return names


def compute_nodes(model) -> list[ComputeNode]:
    """Conv/MatMul/Gemm nodes with their data inputs (not biases) split by kind."""
    import onnx

    constants = _constants(model.graph)
    nodes = []
    for n in model.graph.node:
        if n.op_type not in COMPUTE_OPS:
            continue
        if not n.name:
            raise ValueError(f"an unnamed {n.op_type} node: the recipe names nodes to describe them")
        data = [i for i in n.input[:2] if i]
        nodes.append(
            ComputeNode(
                n.name,
                n.op_type,
                activations=[i for i in data if i not in constants],
                weights=[i for i in data if i in constants],
                attrs={a.name: onnx.helper.get_attribute_value(a) for a in n.attribute},
            )
        )
    return nodes


def _with_outputs(model, names: Iterable[str]):
    """A copy of `model` that also returns the named tensors."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    have = {o.name for o in copy.graph.output}
    for name in dict.fromkeys(names):
        if name not in have:
            copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return copy


def _session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


# --- calibration statistics -------------------------------------------------------------
def _feeds(reader, limit: int) -> list[dict[str, np.ndarray]]:
    """Up to `limit` feeds spread evenly over the reader's, which is rewound after."""
    reader.rewind()
    try:
        total = len(reader)
    except TypeError:
        total = None
    stride = max(1, math.ceil(total / limit)) if total else 1
    feeds, i = [], 0
    while (feed := reader.get_next()) is not None:
        if i % stride == 0 and len(feeds) < limit:
            feeds.append(feed)
        i += 1
    reader.rewind()
    return feeds


def list_reader(feeds: list[dict[str, np.ndarray]]):
    """An onnxruntime CalibrationDataReader over feeds held in memory, rewindable."""
    from onnxruntime.quantization import CalibrationDataReader

    class Listed(CalibrationDataReader):
        def __init__(self):
            self.rewind()

        def get_next(self):
            return next(self._it, None)

        def rewind(self):
            self._it = iter(feeds)

        def __len__(self):
            return len(feeds)

    return Listed()


def _rewindable(reader):
    """The reader itself when it can rewind (both passes stream from it), else its feeds
    read once into a list reader."""
    if hasattr(reader, "rewind"):
        return reader
    return list_reader(list(iter(reader.get_next, None)))


@dataclass
class TensorStats:
    lo: float = math.inf
    hi: float = -math.inf
    values: list[np.ndarray] = field(default_factory=list)
    shape: tuple[int, ...] = ()

    def add(self, x: np.ndarray) -> None:
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        flat = x.ravel()
        self.values.append(flat[:: max(1, flat.size // VALUES_PER_FEED)].astype(np.float32))
        self.shape = x.shape

    def round_trip_sqnr_db(self, bits: int, bulk: bool = False) -> float:
        """SQNR of the sampled values through a signed `bits` quantize/dequantize over the
        calibrated range (ORT's asymmetric scheme: the range widened to include zero).
        `bulk`: over the values up to the 99.9th percentile of |x| only, which is what
        the rounding does to the typical values once the range has to cover outliers
        (over all values, the outliers' own energy hides the damage)."""
        x = np.concatenate(self.values).astype(np.float64)
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0
        zero = np.round(qmin - lo / scale)
        error = x - (np.clip(np.round(x / scale) + zero, qmin, qmax) - zero) * scale
        if bulk:
            keep = np.abs(x) <= np.quantile(np.abs(x), BULK_QUANTILE)
            x, error = x[keep], error[keep]
        noise = float(np.sum(error**2))
        return math.inf if noise == 0 else 10 * math.log10(float(np.sum(x**2)) / noise)

    def describe(self) -> dict[str, float]:
        x = np.concatenate(self.values).astype(np.float64)
        return {
            "min": self.lo,
            "max": self.hi,
            "rms": float(np.sqrt(np.mean(x**2))),
            "p999_abs": float(np.quantile(np.abs(x), BULK_QUANTILE)),
            "int8_sqnr_db": round(self.round_trip_sqnr_db(8), 2),
            "int8_bulk_sqnr_db": round(self.round_trip_sqnr_db(8, bulk=True), 2),
        }


def tensor_stats(model, feeds: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, TensorStats]:
    sess = _session(_with_outputs(model, names))
    outputs = [o.name for o in sess.get_outputs()]
    stats = {n: TensorStats() for n in names}
    for feed in feeds:
        for name, value in zip(outputs, sess.run(outputs, feed)):
            if name in stats:
                stats[name].add(value)
    return stats


# --- cost -------------------------------------------------------------------------------------
def _flops(node: ComputeNode, shapes: dict[str, tuple[int, ...]], weights: dict[str, tuple[int, ...]]) -> int:
    """Multiply-adds x 2 of one node for the shapes seen on a calibration feed."""
    a = shapes.get(node.activations[0]) if node.activations else None
    if node.op_type == "Conv":
        w = weights[node.weights[0]]  # [C_out, C_in / groups, *kernel]
        strides = node.attrs.get("strides", [1] * (len(w) - 2))
        pads = node.attrs.get("pads", [0] * 2 * (len(w) - 2))
        dil = node.attrs.get("dilations", [1] * (len(w) - 2))
        out = [
            (a[2 + i] + pads[i] + pads[i + len(strides)] - dil[i] * (w[2 + i] - 1) - 1) // strides[i] + 1
            for i in range(len(strides))
        ]
        return 2 * a[0] * int(np.prod(w)) * int(np.prod(out))
    b = shapes.get(node.activations[1]) if len(node.activations) > 1 else weights[node.weights[0]]
    if node.op_type == "Gemm":
        m, k = (a[1], a[0]) if node.attrs.get("transA") else (a[0], a[1])
        n = b[0] if node.attrs.get("transB") else b[1]
        return 2 * m * k * n
    batch = int(np.prod(np.broadcast_shapes(a[:-2], b[:-2]))) if len(a) > 2 or len(b) > 2 else 1
    return 2 * batch * a[-2] * a[-1] * b[-1]


def _weight_shapes(model) -> dict[str, tuple[int, ...]]:
    from onnx import numpy_helper

    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shapes[n.output[0]] = tuple(numpy_helper.to_array(a.t).shape)
    return shapes


# --- decisions -------------------------------------------------------------------------------
@dataclass
class Plan:
    overrides: dict[str, str] = field(default_factory=dict)  # tensor -> QuantType name
    exclude: dict[str, str] = field(default_factory=dict)  # node -> why
    reasons: dict[str, str] = field(default_factory=dict)  # tensor -> why it is not int8


def plan_default(
    nodes: list[ComputeNode],
    stats: dict[str, TensorStats],
    outputs: dict[str, str],
    min_bulk_db: float = MIN_INT8_SQNR_DB,
) -> Plan:
    """Which tensors leave int8 and why (see the module's docstring)."""
    plan = Plan()
    for node in nodes:
        both_activations = node.op_type == "MatMul" and len(node.activations) == 2
        for tensor in node.activations:
            s = stats[tensor]
            bulk_db = s.round_trip_sqnr_db(8, bulk=True)
            if both_activations:
                why = "input of a MatMul of two activations (attention): no weight scale absorbs its range"
            elif bulk_db < min_bulk_db:
                why = (
                    f"int8 keeps {bulk_db:.1f} dB < {min_bulk_db:g} dB on its typical values "
                    f"(range {s.lo:.3g}..{s.hi:.3g}, 99.9% of |x| below "
                    f"{float(np.quantile(np.abs(np.concatenate(s.values)), BULK_QUANTILE)):.3g})"
                )
            else:
                continue
            int16_db = s.round_trip_sqnr_db(16, bulk=True)
            if int16_db < min_bulk_db:
                plan.exclude[node.name] = f"{tensor}: even 16 bits keep only {int16_db:.1f} dB"
            plan.overrides[tensor] = "QInt16"
            plan.reasons.setdefault(tensor, why)
        plan.overrides[outputs[node.name]] = "QInt16"
    return plan


def _describe_nodes(
    nodes: list[ComputeNode], plan: Plan, per_channel: bool, outputs: dict[str, str], flops: dict[str, int]
) -> tuple[dict[str, str], dict[str, dict], dict]:
    """Per node: `int8` (both data inputs int8), `int16` (an input at 16 bits), `float`."""

    def bits(tensor: str) -> str:
        return "int16" if plan.overrides.get(tensor) == "QInt16" else "int8"

    precision, details = {}, {}
    for node in nodes:
        excluded = node.name in plan.exclude
        acts = {t: "float" if excluded else bits(t) for t in node.activations}
        precision[node.name] = "float" if excluded else max(acts.values(), default="int8", key=len)
        details[node.name] = {
            "op_type": node.op_type,
            "precision": precision[node.name],
            "activations": acts,
            "weights": None
            if not node.weights or excluded
            else f"int8 {'per-channel' if per_channel else 'per-tensor'}",
            "output": "float" if excluded else bits(outputs[node.name]),
            "reason": plan.exclude.get(node.name)
            or next((plan.reasons[t] for t in node.activations if t in plan.reasons), None),
            "flops": flops.get(node.name),
        }
    total = sum(flops.values()) or 1
    int8 = [n for n, p in precision.items() if p == "int8"]
    coverage = {
        "nodes": len(nodes),
        "int8_nodes": len(int8),
        "int16_nodes": sum(p == "int16" for p in precision.values()),
        "float_nodes": sum(p == "float" for p in precision.values()),
        "int8_flops_share": round(sum(flops.get(n, 0) for n in int8) / total, 4),
        "flops_per_feed": sum(flops.values()),
    }
    return precision, details, coverage


# --- quantize ---------------------------------------------------------------------------------
def _calibration_options(method: str) -> dict:
    """As the workflow's naive path: histogram methods collect one feed at a time."""
    return {} if method == "minmax" else {"CalibStridedMinMax": 1}


def _run_quantizer(fp32_path: str, out_path: str, reader, method: str, per_channel: bool, plan: Plan) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    extra = _calibration_options(method)
    if plan.overrides:
        extra["TensorQuantOverrides"] = {t: [{"quant_type": getattr(QuantType, q)}] for t, q in plan.overrides.items()}
    reader.rewind()
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out_path))) as tmp:
        # quantize_static writes `<input>-inferred.onnx` beside its input: a private link
        # keeps concurrent quantizations of one FP32 model apart.
        source = os.path.join(tmp, "model.onnx")
        os.symlink(os.path.abspath(fp32_path), source)
        quantize_static(
            source,
            out_path,
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(COMPUTE_OPS),
            nodes_to_exclude=sorted(plan.exclude),
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            calibrate_method=methods[method],
            extra_options=extra,
        )


def _output_names(model, nodes: list[ComputeNode]) -> dict[str, str]:
    first = {n.name: n.output[0] for n in model.graph.node}
    return {n.name: first[n.name] for n in nodes}


def quantize(
    fp32_path: str,
    out_path: str,
    reader,
    recipe: str = "default",
    method: str = "minmax",
    per_channel: bool | None = None,
    *,
    min_bulk_sqnr_db: float = MIN_INT8_SQNR_DB,
) -> dict:
    """Quantize `fp32_path` into `out_path` (QDQ) from the calibration `reader` (an
    onnxruntime CalibrationDataReader; rewound between passes where it can be).

    `per_channel` None means the recipe's choice: per-tensor for `naive` (today's
    behaviour), per-channel for `default`. Returns a JSON-able description: each compute
    node's precision, its inputs' and output's types, the reason for every departure from
    int8, the statistics that decided, and the share of compute left in int8.
    """
    import onnx

    if recipe not in RECIPES:
        raise ValueError(f"INT8 recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    if method not in METHODS:
        raise ValueError(f"calibration method {method!r}: choose one of {', '.join(METHODS)}")
    per_channel = (recipe == "default") if per_channel is None else bool(per_channel)
    reader = _rewindable(reader)
    model = onnx.load(fp32_path)
    nodes = compute_nodes(model)
    outputs = _output_names(model, nodes)
    feeds = _feeds(reader, STATS_FEEDS if recipe == "default" else 1)
    if not feeds:
        raise ValueError("no calibration samples to quantize with")
    activations = sorted({t for n in nodes for t in n.activations})
    stats = tensor_stats(model, feeds, activations)
    if recipe == "default":
        plan = plan_default(nodes, stats, outputs, min_bulk_sqnr_db)
    else:  # today's: ORT's defaults, outputs requantized to int8 like the inputs
        plan = Plan(overrides={})
    flops = {n.name: _flops(n, {t: s.shape for t, s in stats.items()}, _weight_shapes(model)) for n in nodes}
    _run_quantizer(fp32_path, out_path, reader, method, per_channel, plan)
    precision, details, coverage = _describe_nodes(nodes, plan, per_channel, outputs, flops)
    described = {
        "recipe": recipe,
        "method": method,
        "per_channel": per_channel,
        "nodes": precision,
        "node_details": details,
        "exclusions": dict(plan.exclude),
        "coverage": coverage,
    }
    if recipe == "default":
        described["thresholds"] = {"min_int8_bulk_sqnr_db": min_bulk_sqnr_db, "bulk_quantile": BULK_QUANTILE}
        described["statistics_feeds"] = len(feeds)
        described["tensors"] = {t: {**stats[t].describe(), "type": plan.overrides.get(t, "QInt8")} for t in activations}
    return described


# --- sensitivity -------------------------------------------------------------------------------
def _sqnr(signal: float, noise: float) -> float | None:
    """None where it is infinite (no noise) or undefined (no signal): JSON has neither."""
    if noise == 0 or signal == 0:
        return None
    return 10 * math.log10(signal / noise)


def node_sensitivity(fp32_path: str, int8_path: str, feeds: list[dict[str, np.ndarray]]) -> list[dict]:
    """Per compute node of the FP32 graph that the INT8 graph quantized: SQNR (dB) of its
    output in the INT8 model against the FP32 model, over all `feeds` (signal and noise
    summed over every feed), in graph order. The INT8 output carries the error of every
    quantized node upstream too: the table shows where the error grows."""
    import onnx

    fp32, int8 = onnx.load(fp32_path), onnx.load(int8_path)
    int8_nodes = {n.name: n for n in int8.graph.node}
    quantized_inputs = {o for n in int8.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    rows = []
    for node in compute_nodes(fp32):
        twin = int8_nodes.get(node.name)
        if twin is None:
            continue
        out = next(n for n in fp32.graph.node if n.name == node.name).output[0]
        rows.append(
            {
                "node": node.name,
                "op_type": node.op_type,
                "output": out,
                "quantized": any(i in quantized_inputs for i in twin.input),
            }
        )
    outputs = [r["output"] for r in rows]
    sessions = [_session(_with_outputs(m, outputs)) for m in (fp32, int8)]
    signal = dict.fromkeys(outputs, 0.0)
    noise = dict.fromkeys(outputs, 0.0)
    for feed in feeds:
        ref, test = (dict(zip(outputs, s.run(outputs, feed))) for s in sessions)
        for name in outputs:
            r = ref[name].astype(np.float64)
            signal[name] += float(np.sum(r**2))
            noise[name] += float(np.sum((r - test[name]) ** 2))
    for r in rows:
        sqnr = _sqnr(signal[r["output"]], noise[r["output"]])
        r["sqnr_db"] = None if sqnr is None else round(sqnr, 2)
    return rows
