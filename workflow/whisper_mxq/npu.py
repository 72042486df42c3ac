"""The quality report's NPU backend: the compiled .mxq pair on a Mobilint card.

`NpuPath` offers what the report evaluates every backend through, `encode(features)`
and `logits(ids, states)`, on Mobilint's own client: transformers-mblt loads the runtime
bundle (its MobilintWhisperConfig says where each part runs) and opens both binaries
through qbruntime, and the host adds token and position embeddings from the bundle's
tables, as the runtime does when it generates.

It needs transformers-mblt and mobilint-qb-runtime (envs/runtime.yaml: they need
transformers < 5.18) and a card; `card_missing()` says why not where there is none.
"""

from __future__ import annotations

import numpy as np

from .decoder_calibration import embedding_tables


def card_missing() -> str | None:
    """None where qbruntime sees a Mobilint NPU, else the reason it cannot run."""
    try:
        import qbruntime
    except ImportError:
        return "qbruntime is not installed (pip install mobilint-qb-runtime)"
    devices = qbruntime.get_available_devices()
    return None if devices else "no Mobilint NPU card: qbruntime.get_available_devices() is empty"


class NpuPath:
    """The NPU encoder and decoder of `bundle_dir`; `dev_no` overrides the bundle's device."""

    def __init__(self, bundle_dir: str, dev_no: int | None = None):
        from transformers_mblt.models.whisper.modeling_whisper import MobilintWhisperForConditionalGeneration

        placement = {} if dev_no is None else {"encoder_dev_no": dev_no, "decoder_dev_no": dev_no}
        self.model = MobilintWhisperForConditionalGeneration.from_pretrained(
            bundle_dir, use_safetensors=True, **placement
        )
        self.tables = embedding_tables(self.model)
        self.decoder_npu = self.model.get_decoder().npu_backend.mxq_models[0]
        self._clip = None  # the states whose tokens the device's KV cache holds
        self._fed: list[int] = []
        self._rows: list[np.ndarray] = []

    def encode(self, features: np.ndarray) -> np.ndarray:
        """[1, n_frames, n_mels] log-mel -> [1, n_source, d_model] encoder states."""
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(features, np.float32)).transpose(1, 2)
            return self.model.get_encoder()(x).last_hidden_state.float().numpy()

    def logits(self, ids: list[int], states: np.ndarray) -> np.ndarray:
        """[len(ids), vocab] logits of every position, teacher-forced on `ids`.

        Tokens go to the device one at a time and stay in its KV cache, so greedy decoding
        (the same ids plus one, call after call) feeds each token once. One token a call
        also suits both kinds of compiled decoder: those returning every position's logits
        and those returning the last one only."""
        ids = [int(i) for i in ids]
        if states is not self._clip or ids[: len(self._fed)] != self._fed:
            self._clip, self._fed, self._rows = states, [], []
        tokens, positions = self.tables
        enc = np.ascontiguousarray(states, np.float32)[:, None]  # [1, 1, n_source, d]
        for pos in range(len(self._fed), len(ids)):
            embeds = (tokens[ids[pos]] + positions[pos])[None, None, None].astype(np.float32)
            out = self.decoder_npu.infer([embeds, enc], None, pos)
            self._rows.append(np.asarray(out[0], np.float32).reshape(-1, tokens.shape[0])[-1])
            self._fed.append(ids[pos])
        return np.stack(self._rows[: len(ids)])

    def close(self) -> None:
        """Release both binaries from the card."""
        self.model.get_encoder().dispose()
        self.model.get_decoder().dispose()
