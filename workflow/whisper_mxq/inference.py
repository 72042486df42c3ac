"""The two sides the quality report compares: the FP32 model, and a compiled pair.

FP32 is the PyTorch model decoding with transformers' own `generate` (its key/value
cache, its suppression rules). A compiled pair is cut where the NPU's is: the encoder
takes mel as [1, n_frames, n_mels]; the decoder takes host-computed embeddings
[1, T, d_model] and the encoder states and returns logits for all T positions. It has no
key/value cache input (the NPU keeps its cache on the device), so its greedy loop feeds
the whole prefix each step, under the same rules `generate` applies: the generation
config's `suppress_tokens` at every step, `begin_suppress_tokens` at the first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from . import data, models
from . import decoder_calibration as dec
from . import encoder_calibration as enc
from .heldout import Clip
from .languages import whisper_code


class Backend(Protocol):
    def encode(self, features: np.ndarray) -> np.ndarray: ...  # [1, n_frames, n_mels] -> [1, n_source, d]

    def logits(self, ids: list[int], states: np.ndarray) -> np.ndarray: ...  # -> [T, vocab]


def suppression(generation_config, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """Bool masks of the ids greedy decoding may pick: at every step, and at the first."""
    always = np.ones(vocab, dtype=bool)
    for i in generation_config.suppress_tokens or []:
        if 0 <= i < vocab:
            always[i] = False
    first = always.copy()
    for i in generation_config.begin_suppress_tokens or []:
        if 0 <= i < vocab:
            first[i] = False
    return always, first


def greedy(
    logits: Callable[[list[int]], np.ndarray],
    prompt: list[int],
    masks: tuple[np.ndarray, np.ndarray],
    eot: int,
    max_new: int,
    max_len: int,
) -> list[int]:
    """prompt + argmax tokens until end-of-text, `max_new` tokens or `max_len` in all."""
    always, first = masks
    ids = list(prompt)
    while len(ids) - len(prompt) < max_new and len(ids) < max_len:
        allowed = first if len(ids) == len(prompt) else always
        ids.append(int(np.argmax(np.where(allowed, logits(ids)[-1], -np.inf))))
        if ids[-1] == eot:
            break
    return ids


class TorchPath:
    """The float32 model as loaded for calibration."""

    def __init__(self, model):
        self.model = model

    def encode(self, features: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(features).transpose(1, 2)
            return self.model.get_encoder()(x).last_hidden_state.numpy()

    def logits(self, ids: list[int], states: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(
                encoder_outputs=(torch.from_numpy(states),), decoder_input_ids=torch.tensor([ids]), use_cache=False
            )
        return out.logits[0].numpy()

    def generate(
        self, states: np.ndarray, prompt: list[int], language: str | None, task: str, max_new: int
    ) -> list[int]:
        """prompt + transformers' greedy decode from the given encoder states."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        kwargs = {"language": language, "task": task} if language else {}
        with torch.no_grad():
            out = self.model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=torch.from_numpy(states)),
                max_new_tokens=max_new,
                return_timestamps=False,
                do_sample=False,
                num_beams=1,
                **kwargs,
            )
        ids = out[0].tolist()
        # transformers 4 returns the prompt as well, 5 only the new tokens
        if ids[:1] == prompt[:1]:
            if ids[: len(prompt)] != prompt:
                raise RuntimeError(f"generate prompted with {ids[: len(prompt)]}, not {prompt}")
            return ids
        return prompt + ids


class OnnxPath:
    """An ONNX encoder/decoder pair (the INT8 backend); the host adds the embeddings."""

    def __init__(self, encoder: str, decoder: str, model, threads: int = 1):
        from . import onnx_int8

        self._run_encoder, self._run_decoder = onnx_int8.run_encoder, onnx_int8.run_decoder
        self.encoder = onnx_int8.session(encoder, threads)
        self.decoder = onnx_int8.session(decoder, threads)
        self.tables = dec.embedding_tables(model)

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self._run_encoder(self.encoder, features)

    def logits(self, ids: list[int], states: np.ndarray) -> np.ndarray:
        return self._run_decoder(self.decoder, dec.decoder_input(self.tables, ids), states)[0]


class Context:
    """What every evaluation needs once: model, tokenizer, features of the clips."""

    def __init__(self, snapshot: str, eval_clips: list[Clip], manifests: list[str]):
        from . import atomic

        self.model = models.load_model(snapshot)
        processor = models.load_processor(snapshot)
        self.tokenizer = processor.tokenizer
        self.eot = self.tokenizer.eos_token_id
        self.multilingual = models.is_multilingual(snapshot)
        self.masks = suppression(self.model.generation_config, self.model.config.vocab_size)
        self.clips = eval_clips
        load = data.clip_checker(*(atomic.read_json(m) for m in manifests))
        fe = processor.feature_extractor
        self.features = [enc.encoder_features(fe, load(c.wav)) for c in eval_clips]
        self.fp32 = TorchPath(self.model)
        self.fp32_states = [self.fp32.encode(f) for f in self.features]

    def tasks(self, clip: Clip | None = None) -> list[str]:
        """The tasks evaluated: translate too on a multilingual model, except for English
        clips (translating English into English would count them twice)."""
        if not self.multilingual or (clip is not None and whisper_code(clip.lang) == "en"):
            return ["transcribe"]
        return ["transcribe", "translate"]

    def prompt(self, clip: Clip, task: str = "transcribe") -> list[int]:
        return dec.prompt(self.tokenizer, whisper_code(clip.lang), task, self.multilingual).ids

    def decode_fp32(self, i: int, task: str, max_new: int) -> list[int]:
        clip = self.clips[i]
        language = whisper_code(clip.lang) if self.multilingual else None
        return self.fp32.generate(self.fp32_states[i], self.prompt(clip, task), language, task, max_new)

    def decode(self, path: Backend, states: np.ndarray, clip: Clip, task: str, max_new: int) -> list[int]:
        return greedy(
            lambda ids: path.logits(ids, states),
            self.prompt(clip, task),
            self.masks,
            self.eot,
            max_new,
            self.model.config.max_target_positions,
        )

    def text(self, ids: list[int]) -> str:
        # The prompt's tokens are all special (ids above end-of-text): text_ids drops them.
        return self.tokenizer.decode(dec.text_ids(ids, self.eot)).strip()
