"""Step 2, decoder: what the NPU decoder sees, and the JSON qbcompiler reads.

Per sample, the encoder's last hidden state [1, n_source, d_model] and the decoder
input [1, T, d_model] = token embeddings + position embeddings (no scaling) of
prompt + generated text + end-of-text, the task (transcribe or translate) drawn from
(seed, sample id). Shapes and special-token ids come from the model's config and
tokenizer. `whisper_decoder_calib.json` lists both files per sample with the metadata.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from . import atomic, layout
from .encoder_calibration import check_npy
from .languages import whisper_code

TASK_TYPES = {"transcribe": "transcription_with_lang", "translate": "translation_with_lang"}
TASK_TYPES_NO_LANG = {"transcribe": "transcription_no_lang"}  # English-only models


def choose_task(seed: int, sample: str, translate_ratio: float, multilingual: bool = True) -> str:
    """Transcribe or translate, a pure function of (seed, sample id).

    The tutorial drew from an unseeded global RNG, so every run (and any parallel
    split of the work) got a different mix; a hash gives each sample its own draw.
    """
    if not multilingual:
        return "transcribe"
    digest = hashlib.sha256(f"{seed}:{sample}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return "translate" if draw < translate_ratio else "transcribe"


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    task_type: str


def prompt(tokenizer, language: str, task: str, multilingual: bool) -> Prompt:
    """`<|startoftranscript|><|xx|><|task|><|notimestamps|>`; no language/task tokens
    for English-only models, which have none."""
    names = ["<|startoftranscript|>"]
    if multilingual:
        names += [f"<|{language}|>", f"<|{task}|>"]
    names.append("<|notimestamps|>")
    ids = tokenizer.convert_tokens_to_ids(names)
    if tokenizer.unk_token_id in ids and tokenizer.unk_token_id != tokenizer.eos_token_id:
        raise ValueError(f"tokenizer lacks one of the special tokens {names}")
    task_type = TASK_TYPES[task] if multilingual else TASK_TYPES_NO_LANG[task]
    return Prompt(ids=list(ids), task_type=task_type)


def text_ids(generated: list[int], eot: int) -> list[int]:
    """Text tokens of a generated sequence: up to the first end-of-text, without the
    special tokens (transformers 4 returns the prompt with them, 5 does not)."""
    if eot in generated:
        generated = generated[: generated.index(eot)]
    return [t for t in generated if t < eot]


def sequence(prompt_ids: list[int], text: list[int], eot: int, max_len: int) -> list[int]:
    """prompt + text + end-of-text, the text cut so the whole fits the decoder."""
    room = max_len - len(prompt_ids) - 1
    return prompt_ids + text[:room] + [eot]


def embedding_tables(model) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's token and position embedding tables, fp32, on the host."""
    decoder = model.get_decoder()
    return tuple(t.weight.detach().float().cpu().numpy() for t in (decoder.embed_tokens, decoder.embed_positions))


def decoder_input(tables: tuple[np.ndarray, np.ndarray], ids: list[int]) -> np.ndarray:
    """embed_tokens(ids) + embed_positions(0..T-1) from embedding_tables: what the host
    hands the NPU decoder (a host lookup, no device round trip)."""
    tokens, positions = tables
    return (tokens[ids] + positions[: len(ids)])[None].astype(np.float32, copy=False)


def require_english(snapshot: str, samples: list[str]) -> None:
    """An English-only model only ever decodes English: on other speech it would generate
    text unlike anything it sees in use, and the decoder would be calibrated on that."""
    foreign = sorted({layout.sample_lang(s) for s in samples if whisper_code(layout.sample_lang(s)) != "en"})
    if foreign:
        raise ValueError(
            f"{snapshot} is an English-only Whisper model (no language tokens) and cannot be "
            f"calibrated on {foreign}: set config key 'languages' to [en_us]"
        )


GENERATION_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def generation_model(model, dtype: str):
    """The model that generates the text: the fp32 model itself, or a half-precision
    copy. The copy only decodes; encoder states and embeddings come from the fp32 model."""
    import copy

    import torch

    if dtype == "auto":  # half precision where it is fast
        dtype = "fp16" if model.device.type == "cuda" else "fp32"
    if dtype not in GENERATION_DTYPES:
        raise ValueError(f"config key 'calibration.dtype': {dtype!r} is not one of {list(GENERATION_DTYPES)}")
    if dtype == "fp32":
        return model
    return copy.deepcopy(model).to(getattr(torch, GENERATION_DTYPES[dtype]))


def write_decoder_calib(
    job_summaries: list[str], out_json: str, out_metadata: str, d_model: int, n_source: int
) -> dict:
    """The tutorial's whisper_decoder_calib.json and its metadata list, absolute paths,
    in the order of the calibrate jobs and their samples. Every file listed is checked
    (present, whole, the right shape) before anything is written."""
    metadata = []
    for summary in job_summaries:
        for entry in atomic.read_json(summary)["samples"]:
            folder = layout.DECODER_SAMPLE_DIR.format(sample=entry["sample"])
            enc = os.path.abspath(os.path.join(folder, layout.ENCODER_STATES_FILE))
            dec = os.path.abspath(os.path.join(folder, layout.DECODER_STATES_FILE))
            check_npy(enc, (1, n_source, d_model))
            check_npy(dec, (1, len(entry["token_ids"]), d_model))
            metadata.append(
                {
                    "encoder_hidden_states": enc,
                    "decoder_hidden_states": dec,
                    "task_type": entry["task_type"],
                    "source_language": entry["source_language"],
                    "use_translation": entry["use_translation"],
                    "decoded_tokens": entry["decoded_tokens"],
                    "token_ids": entry["token_ids"],
                }
            )
    calib = {
        "info": {
            "input names": ["decoder_hidden_states", "encoder_hidden_states"],
            "input shapes": [[1, -1, d_model], [1, n_source, d_model]],
        },
        "calib paths": [[m["decoder_hidden_states"], m["encoder_hidden_states"]] for m in metadata],
        "metadata": metadata,
    }
    atomic.write_json(out_json, calib)
    atomic.write_json(out_metadata, [m["decoded_tokens"] for m in metadata])
    return calib
