"""The built tiny.en as the workflow's ONNX pair, with calibration feeds and evaluation.

The graphs are the workflow's own (`onnx_int8.export_encoder/export_decoder`): encoder
mel [1, 3000, n_mels] -> states; decoder host embeddings [1, T, d] + states -> logits.
Feeds follow the workflow's calibration files: encoder features from the feature
extractor, decoder embeddings of prompt + transcript + end-of-text (the label text is
replaced by the clip's known transcript) over the FP32 encoder's states.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENCODER, DECODER = "encoder.onnx", "decoder.onnx"


@dataclass
class Clip:
    name: str
    transcript: str
    features: np.ndarray  # [1, n_frames, n_mels], the NPU layout
    states: np.ndarray  # FP32 encoder output [1, n_source, d]
    tokens: list[int]  # prompt + transcript + end-of-text


class Model:
    """The transformers checkpoint with what the ONNX paths need from it."""

    def __init__(self, model_dir: str | os.PathLike):
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.dir = Path(model_dir)
        self.torch = WhisperForConditionalGeneration.from_pretrained(self.dir, dtype=torch.float32).eval()
        self.processor = WhisperProcessor.from_pretrained(self.dir)
        self.tokenizer = self.processor.tokenizer
        self.eot = self.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        gen = self.torch.generation_config
        self.prompt = [gen.decoder_start_token_id, gen.no_timestamps_token_id]  # English-only
        decoder = self.torch.get_decoder()
        self.token_table = decoder.embed_tokens.weight.detach().numpy()
        self.position_table = decoder.embed_positions.weight.detach().numpy()

    def features(self, samples: np.ndarray) -> np.ndarray:
        fe = self.processor.feature_extractor
        mel = fe(samples, sampling_rate=fe.sampling_rate, return_tensors="np").input_features
        return np.ascontiguousarray(mel.transpose(0, 2, 1), dtype=np.float32)

    def encode(self, features: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(features).transpose(1, 2)
            return self.torch.get_encoder()(x).last_hidden_state.numpy()

    def embed(self, ids: list[int]) -> np.ndarray:
        """Token + position embeddings, as the host computes them for the NPU decoder."""
        x = self.token_table[ids] + self.position_table[: len(ids)]
        return x[None].astype(np.float32)

    def clip(self, name: str, transcript: str, samples: np.ndarray) -> Clip:
        features = self.features(samples)
        text = self.tokenizer.encode(" " + transcript.strip(), add_special_tokens=False)
        return Clip(name, transcript, features, self.encode(features), self.prompt + text + [self.eot])

    def text(self, ids: list[int]) -> str:
        return self.tokenizer.decode([i for i in ids if i < self.eot]).strip()


def export(model: Model, out_dir: str | os.PathLike) -> dict[str, Path]:
    """encoder.onnx and decoder.onnx of the model (kept when already there)."""
    from whisper_mxq import onnx_int8

    out = Path(out_dir)
    paths = {"encoder": out / ENCODER, "decoder": out / DECODER}
    if not paths["encoder"].exists():
        onnx_int8.export_encoder(model.torch, str(paths["encoder"]))
    if not paths["decoder"].exists():
        onnx_int8.export_decoder(model.torch, str(paths["decoder"]))
    return paths


def encoder_feeds(clips: list[Clip]) -> list[dict[str, np.ndarray]]:
    return [{"input_features": c.features} for c in clips]


def decoder_feeds(model: Model, clips: list[Clip]) -> list[dict[str, np.ndarray]]:
    return [{"decoder_hidden_states": model.embed(c.tokens), "encoder_hidden_states": c.states} for c in clips]


def reader(feeds: list[dict[str, np.ndarray]]):
    """An onnxruntime CalibrationDataReader over in-memory feeds, rewindable."""
    from whisper_mxq.int8_recipe import list_reader

    return list_reader(feeds)


def session(path: str | os.PathLike, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# --- metrics ------------------------------------------------------------------------------
def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    ref = reference.astype(np.float64)
    noise = float(np.sum((ref - test) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref**2) / noise))


class Pair:
    """An encoder/decoder ONNX pair run the way the NPU runtime runs it."""

    def __init__(self, model: Model, encoder: str | os.PathLike, decoder: str | os.PathLike, threads: int = 1):
        self.model = model
        self.encoder = session(encoder, threads)
        self.decoder = session(decoder, threads)

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self.encoder.run(None, {"input_features": features})[0]

    def logits(self, ids: list[int], states: np.ndarray) -> np.ndarray:
        feed = {"decoder_hidden_states": self.model.embed(ids), "encoder_hidden_states": states}
        return self.decoder.run(None, feed)[0][0]

    def greedy(self, states: np.ndarray, max_new: int = 96) -> list[int]:
        """Argmax over text tokens and end-of-text, as the quality report decodes."""
        ids, eot = list(self.model.prompt), self.model.eot
        while len(ids) - len(self.model.prompt) < max_new:
            ids.append(int(np.argmax(self.logits(ids, states)[-1, : eot + 1])))
            if ids[-1] == eot:
                break
        return ids

    def choices(self, tokens: list[int], states: np.ndarray) -> np.ndarray:
        """Teacher-forced argmax (text tokens and end-of-text) after each prompt position."""
        start, eot = len(self.model.prompt), self.model.eot
        return np.argmax(self.logits(tokens, states)[start - 1 : -1, : eot + 1], axis=-1)


def wer(references: list[str], hypotheses: list[str]) -> float:
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    return float(jiwer.wer([norm(r) for r in references], [norm(h) for h in hypotheses]))


def size_mb(path: str | os.PathLike) -> float:
    return os.path.getsize(path) / 1e6


def load_clips(model: Model, built_dir: str | os.PathLike, split: str) -> list[Clip]:
    """The built FLEURS shard of `split` as clips (audio decoded from the Parquet bytes)."""
    import pyarrow.parquet as pq

    from .build import FLEURS_DIR
    from .speech import FLEURS_LANG, decode

    table = pq.read_table(Path(built_dir) / FLEURS_DIR / FLEURS_LANG / split / "0000.parquet")
    clips = []
    for row in table.to_pylist():
        samples = decode(row["audio"]["bytes"])
        clips.append(model.clip(row["path"], row["raw_transcription"], samples))
    return clips
