"""Stand-ins for qbruntime's device calls: run Mobilint's runtime without an NPU card.

Installed into the REAL qbruntime (PyPI: mobilint-qb-runtime): only the two classes of
its C extension that need a card, `Accelerator` and `Model`, are replaced. qbruntime's
Python layer (input-shape matching, ModelConfig, enums) and everything above it
(mblt-npu, transformers-mblt) run unchanged.

A stand-in Model reads the input and output shapes from the .mxq the qbcompiler test
double wrote, and computes what the compiled part computes with the float32 model it
was compiled from: the encoder's output states, or the decoder's logits for the host's
embeddings given the encoder states, with the KV cache kept on the "device" as the
embeddings fed so far (`cache_size` says how many of them to keep). Every call is
recorded in CALLS.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "qbcompiler_double"))
import fake_mxq  # noqa: E402

CALLS: list[dict] = []


class RecordingAccelerator:
    def __init__(self, device_name="auto", dev_no=0):
        CALLS.append({"call": "Accelerator", "device_name": device_name, "dev_no": int(dev_no)})
        self.device_name = device_name

    def get_device_name(self) -> str:
        return self.device_name


class _Variant:
    def __init__(self, model):
        self.model = model

    def get_variant_idx(self) -> int:
        return 0

    def get_model_input_shape(self):
        return self.model.get_model_input_shape()

    def get_model_output_shape(self):
        return self.model.get_model_output_shape()


class StandInModel:
    """What qbruntime's C `Model` offers, computed with the float reference model."""

    reference = None  # WhisperForConditionalGeneration, set by install()
    instances: list = []  # every model opened, to look into after a run

    def __init__(self, path, model_config=None):
        import qbruntime

        try:
            self.info = fake_mxq.read(path)
        except (OSError, ValueError):
            raise qbruntime.QbRuntimeError("Model_FailedToLoadMXQ occurred.") from None
        self.path, self.config = str(path), model_config
        self.history = np.zeros((0, 0), np.float32)  # decoder: embeddings in the KV cache
        CALLS.append({"call": "Model", "path": self.path, **self._placement()})
        StandInModel.instances.append(self)

    def _placement(self) -> dict:
        import qbruntime

        if self.config is None:
            return {"core_mode": None}
        cfg = qbruntime.ModelConfig.__new__(qbruntime.ModelConfig)
        cfg._model_config = self.config
        return {
            "core_mode": cfg.get_core_mode().name,
            "core_ids": [
                f"{c.cluster.name[-1]}:{c.core.name[-1]}" for c in cfg.get_core_ids()
            ],  # Cluster1:Core0 -> 1:0
            "clusters": [int(c.name[-1]) for c in cfg.get_clusters()],
        }

    # --- what the runtime queries ---------------------------------------------------------
    def get_model_input_shape(self):
        return [tuple(s) for s in self.info["input_shapes"]]

    def get_model_output_shape(self):
        return [tuple(s) for s in self.info["output_shapes"]]

    def get_num_model_variants(self) -> int:
        return 1

    def get_model_variant_handle(self, idx):
        return _Variant(self)

    def get_core_mode(self):
        return self.config.get_core_mode() if self.config is not None else None

    def get_device_names(self):
        return [self.info["target_device"]]

    def get_cache_infos(self):
        return []

    def get_input_buffer_info(self):
        import qbruntime.qbruntime as C

        info = C.BufferInfo()
        info.max_cache_size = 448
        return [info]

    def get_model_input_data_type(self):
        import qbruntime.qbruntime as C

        return C.DataType.Float32

    def get_identifier(self) -> int:
        return id(self)

    def get_model_path(self) -> str:
        return self.path

    @property
    def target_cores(self):
        return []

    def launch(self, acc):
        CALLS.append({"call": "launch", "path": self.path, "device_name": acc.get_device_name()})

    def dispose(self):
        CALLS.append({"call": "dispose", "path": self.path})

    # --- the KV cache -----------------------------------------------------------------------
    def dump_cache_memory(self, cache_id=0):
        return [np.ascontiguousarray(self.history, np.float32).view(np.int8).ravel()]

    def load_cache_memory(self, bufs, cache_id=0):
        d = self.reference.config.d_model
        self.history = np.asarray(bufs[0], np.int8).view(np.float32).reshape(-1, d).copy()

    # --- inference ----------------------------------------------------------------------------
    def infer(self, inputs, *args):
        cache_size = args[-1] if args and isinstance(args[-1], (int, np.integer)) else 0
        outputs = args[0] if len(args) == 2 else None
        CALLS.append(
            {
                "call": "infer",
                "path": self.path,
                "part": self.info["part"],
                "shapes": [list(a.shape) for a in inputs],
                "dtypes": [str(a.dtype) for a in inputs],
                "cache_size": int(cache_size),
            }
        )
        result = self._encode(inputs) if self.info["part"] == "encoder" else self._decode(inputs, int(cache_size))
        if outputs is not None:
            outputs[:] = result
            return None
        return result

    infer_chw = infer

    def _encode(self, inputs):
        import torch

        (features,) = inputs  # [1, frames, mels], as the NPU encoder takes mel
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(features)).reshape(1, *features.shape[-2:]).transpose(1, 2)
            return [self.reference.get_encoder()(x).last_hidden_state.numpy()]

    def _decode(self, inputs, cache_size: int):
        import torch

        embeds, states = inputs  # [1, 1, t, d] host embeddings, [1, 1, 1500, d]
        new = embeds.reshape(-1, embeds.shape[-1])
        self.history = np.concatenate([self.history.reshape(-1, new.shape[1])[:cache_size], new])
        decoder = self.reference.get_decoder()
        n = len(self.history)
        with torch.no_grad():
            # the host added the positions already; the float decoder adds them again
            x = torch.from_numpy(self.history)[None] - decoder.embed_positions.weight[:n][None]
            enc = torch.from_numpy(np.ascontiguousarray(states)).reshape(1, *states.shape[-2:])
            hidden = decoder(inputs_embeds=x, encoder_hidden_states=enc, use_cache=False).last_hidden_state
            logits = self.reference.proj_out(hidden)[0, cache_size:].numpy()
        rows = self.info["output_shapes"][0][-2]
        return [logits[None] if rows == -1 else logits[None, -1:]]


def install(reference_snapshot: str) -> None:
    """Replace qbruntime's device classes; compute with the model saved at the path."""
    import qbruntime.qbruntime as C
    from transformers import WhisperForConditionalGeneration

    StandInModel.reference = WhisperForConditionalGeneration.from_pretrained(reference_snapshot).eval()
    C.Accelerator = RecordingAccelerator
    C.Model = StandInModel
