"""A compile backend that runs anywhere: ONNX export and ONNX Runtime static INT8.

The graphs are cut where the NPU's are, so the INT8 models see exactly the calibration
files that go to qbcompiler:

- encoder: mel as [1, n_frames, n_mels] (the NPU layout, and the layout of the encoder
  .npy files, so they feed in untransposed) -> last hidden state [1, n_source, d_model];
- decoder: host-computed embeddings [1, T, d_model] (token + position, T dynamic) and
  encoder states [1, n_source, d_model] -> logits [1, T, vocab]. No KV cache: the NPU
  keeps its cache on device, so the graph recomputes the whole prefix each step.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from . import atomic, layout
from .encoder_calibration import read_encoder_list
from .models import load_model

ENCODER_INPUT = "input_features"
ENCODER_OUTPUT = "last_hidden_state"
# The names whisper_decoder_calib.json's "info" gives its two inputs, in its order.
DECODER_INPUTS = ("decoder_hidden_states", "encoder_hidden_states")
DECODER_OUTPUT = "logits"
OPSET = 17


# --- export -----------------------------------------------------------------------
def _encoder_module(model):
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = model.get_encoder()

        def forward(self, features):  # [1, n_frames, n_mels], as the NPU takes it
            return self.encoder(features.transpose(1, 2)).last_hidden_state

    return Encoder().eval()


class _NoPositions:
    """Stands in for embed_positions: the host already added positions to the input."""

    def __call__(self, x, *args, **kwargs):
        import torch

        return torch.zeros((), dtype=x.dtype)


@contextlib.contextmanager
def _host_embeddings(decoder) -> Iterator[None]:
    """Let the decoder take embeddings + positions as computed by the host. Swapping the
    position table out (instead of calling the layers one by one) keeps the decoder's
    own mask and layer logic, which change between transformers releases."""
    # An instance attribute shadows the registered submodule without unregistering it,
    # so the weights (and state_dict) stay untouched; deleting it restores the module.
    object.__setattr__(decoder, "embed_positions", _NoPositions())
    try:
        yield
    finally:
        del decoder.__dict__["embed_positions"]


def _decoder_module(model):
    import torch

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = model.get_decoder()
            self.proj_out = model.proj_out

        def forward(self, decoder_hidden_states, encoder_hidden_states):
            # An explicit all-ones padding mask: without one, transformers looks for
            # packed sequences with aten::diff, which the ONNX exporter lacks.
            mask = torch.ones(decoder_hidden_states.shape[:2], dtype=torch.long)
            hidden = self.decoder(
                inputs_embeds=decoder_hidden_states,
                attention_mask=mask,
                encoder_hidden_states=encoder_hidden_states,
                use_cache=False,
            ).last_hidden_state
            return self.proj_out(hidden)

    return Decoder().eval()


def _export(module, args: tuple, path: str, inputs: list[str], output: str, dynamic: dict) -> None:
    import torch

    with atomic.atomic_path(path) as tmp, torch.no_grad():
        # The TorchScript exporter: it needs no onnxscript and handles the dynamic T.
        torch.onnx.export(
            module,
            args,
            str(tmp),
            input_names=inputs,
            output_names=[output],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )


def export_encoder(model, path: str) -> None:
    cfg = model.config
    features = _zeros(1, 2 * cfg.max_source_positions, cfg.num_mel_bins)
    _export(_encoder_module(model), (features,), path, [ENCODER_INPUT], ENCODER_OUTPUT, {})


def export_decoder(model, path: str) -> None:
    cfg = model.config
    hidden = _zeros(1, 4, cfg.d_model)
    states = _zeros(1, cfg.max_source_positions, cfg.d_model)
    dynamic = {DECODER_INPUTS[0]: {1: "T"}, DECODER_OUTPUT: {1: "T"}}
    with _host_embeddings(model.get_decoder()):
        _export(_decoder_module(model), (hidden, states), path, list(DECODER_INPUTS), DECODER_OUTPUT, dynamic)


def export(snapshot: str, part: str, path: str) -> None:
    model = load_model(snapshot)
    (export_encoder if part == "encoder" else export_decoder)(model, path)


def _zeros(*shape: int):
    import torch

    return torch.zeros(shape, dtype=torch.float32)


# --- calibration readers -------------------------------------------------------------
def _sample_of(path: str, pattern: str) -> str:
    """Sample id from a calibration path, by the layout pattern's file or folder name."""
    parts = Path(pattern).parts
    level = next(i for i, p in enumerate(parts) if "{sample}" in p)
    name = Path(path).parts[level - len(parts)]
    prefix, suffix = parts[level].split("{sample}")
    if not (name.startswith(prefix) and name.endswith(suffix)):
        raise ValueError(f"{path}: not named like {pattern}")
    return name[len(prefix) : len(name) - len(suffix)]


def encoder_calibration(list_path: str) -> list[tuple[str, str]]:
    """(sample id, .npy path) of each line of whisper_encoder_cali.txt, in order."""
    return [(_sample_of(p, layout.ENCODER_NPY), p) for p in read_encoder_list(list_path)]


def decoder_calibration(json_path: str) -> list[dict]:
    """Entries of whisper_decoder_calib.json: sample id, both paths, task type."""
    calib = atomic.read_json(json_path)
    names = tuple(calib["info"]["input names"])
    if names != DECODER_INPUTS:
        raise ValueError(f"{json_path}: input names {names}, expected {DECODER_INPUTS}")
    metadata = calib.get("metadata") or [{} for _ in calib["calib paths"]]
    return [
        {
            "sample": _sample_of(dec, layout.DECODER_DECODER_STATES),
            "decoder_hidden_states": dec,
            "encoder_hidden_states": enc,
            "use_translation": bool(meta.get("use_translation", False)),
        }
        for (dec, enc), meta in zip(calib["calib paths"], metadata, strict=True)
    ]


def _keep(sample: str, samples: set[str] | None) -> bool:
    return samples is None or sample in samples


class _Reader:
    """An onnxruntime CalibrationDataReader over a list of feeds loaded lazily."""

    def __init__(self, feeds: list[dict[str, str]]):
        if not feeds:
            raise ValueError("no calibration samples to quantize with")
        self.feeds = feeds
        self.count = len(feeds)
        self._it = iter(self.feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._it, None)
        return None if feed is None else {k: atomic.read_npy(p) for k, p in feed.items()}

    def rewind(self) -> None:
        self._it = iter(self.feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self.feeds[start_index:end_index])


def encoder_reader(list_path: str, samples: set[str] | None = None) -> _Reader:
    """Feeds the encoder .npy files as they are: [1, n_frames, n_mels], the graph's layout."""
    return _Reader([{ENCODER_INPUT: p} for s, p in encoder_calibration(list_path) if _keep(s, samples)])


def decoder_reader(json_path: str, samples: set[str] | None = None) -> _Reader:
    return _Reader(
        [
            {name: e[name] for name in DECODER_INPUTS}
            for e in decoder_calibration(json_path)
            if _keep(e["sample"], samples)
        ]
    )


def reader(part: str, calib_path: str, samples: set[str] | None = None) -> _Reader:
    return (encoder_reader if part == "encoder" else decoder_reader)(calib_path, samples)


# --- quantization ----------------------------------------------------------------------
def _as_ort_reader(source: _Reader):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def get_next(self):
            return source.get_next()

        def rewind(self):
            source.rewind()

        def set_range(self, start_index, end_index):
            source.set_range(start_index, end_index)

        def __len__(self):
            return source.count

    return Reader()


def quantize(fp32_path: str, out_path: str, data: _Reader, method: str, per_channel: bool | None, recipe: str) -> dict:
    """Static quantization (QDQ) from the calibration feeds by `recipe` (int8_recipe:
    `naive` or `default`); returns which nodes got which precision."""
    from . import int8_recipe

    data.rewind()
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out_path))) as tmp:
        staged = os.path.join(tmp, "model.int8.onnx")
        # ORT's quantizer writes `<input>-inferred.onnx` beside its input: a private
        # link keeps concurrent jobs on the same FP32 model from deleting each other's.
        source = os.path.join(tmp, "model.onnx")
        os.symlink(os.path.abspath(fp32_path), source)
        described = int8_recipe.quantize(
            source, staged, _as_ort_reader(data), recipe=recipe, method=method, per_channel=per_channel
        )
        with atomic.atomic_path(out_path) as final_tmp:
            os.replace(staged, final_tmp)
    return described


# --- inference ------------------------------------------------------------------------
def session(path: str, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def run_encoder(sess, features: np.ndarray) -> np.ndarray:
    """features [1, n_frames, n_mels] -> encoder states [1, n_source, d_model]."""
    return sess.run([ENCODER_OUTPUT], {ENCODER_INPUT: features})[0]


def run_decoder(sess, hidden: np.ndarray, states: np.ndarray) -> np.ndarray:
    """embeddings [1, T, d] + encoder states -> logits [1, T, vocab]."""
    return sess.run([DECODER_OUTPUT], dict(zip(DECODER_INPUTS, (hidden, states))))[0]


def quantize_part(
    part: str,
    fp32_path: str,
    calib_path: str,
    out_path: str,
    method: str,
    per_channel: bool | None,
    recipe: str,
    samples: Iterable[str] | None = None,
) -> dict:
    """Quantize one part from its calibration file; returns the precision description
    with the number of calibration samples used."""
    data = reader(part, calib_path, None if samples is None else set(samples))
    described = quantize(fp32_path, out_path, data, method, per_channel, recipe)
    return {**described, "part": part, "calibration_samples": data.count}
