"""Model snapshots: fetch once into models/, then every job loads offline from there.

Cluster nodes often have no internet, and a Hub download per job would be paid
hundreds of times; so one job saves the model and its processor with
`save_pretrained`, and later jobs open that folder with `local_files_only=True`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import atomic

# torch and transformers are imported where used: the list-writing jobs only read
# shapes(), and importing both costs ~4 s of CPU per job.


def _fp32() -> dict:
    """`dtype=` since transformers 4.56; the tutorial's pinned 4.50 spells it torch_dtype."""
    import torch
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": torch.float32} if (major, minor) >= (4, 56) else {"torch_dtype": torch.float32}


def snapshot_model(source: str, out_dir: str) -> None:
    """Hub id or local folder -> `out_dir` with weights (safetensors), processor, config."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    try:
        processor = WhisperProcessor.from_pretrained(source)
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(
            f"config key 'model': {source!r} has no usable Whisper processor "
            f"(tokenizer + feature extractor files): {e}"
        ) from e
    # safetensors only: a pickled pytorch_model.bin from the Hub is refused.
    try:
        model = WhisperForConditionalGeneration.from_pretrained(
            source, use_safetensors=True, **_fp32()
        )
    except OSError as e:
        raise ValueError(
            f"config key 'model': cannot load safetensors weights from {source!r} "
            f"(pickled pytorch_model.bin checkpoints are refused): {e}"
        ) from e
    with atomic.atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)


def load_model(snapshot: str, device: str = "cpu"):
    """The snapshot as a float32 model in eval mode; never touches the network."""
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(
        snapshot, local_files_only=True, use_safetensors=True, **_fp32()
    )
    return model.eval().to(device)


def load_processor(snapshot: str):
    from transformers import WhisperProcessor

    try:
        return WhisperProcessor.from_pretrained(snapshot, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{snapshot}: no usable Whisper processor ({e})") from e


def snapshot_label_model(name_or_path: str, out_path: str) -> None:
    """openai-whisper checkpoint (a name such as `large-v3`, or a local .pt) -> out_path."""
    import whisper

    final = Path(out_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".download.") as tmp:
        if os.path.isfile(name_or_path):
            src = name_or_path
        elif name_or_path in whisper.available_models():
            # load_model downloads into download_root and checks the file's SHA256.
            whisper.load_model(name_or_path, device="cpu", download_root=tmp)
            (src,) = Path(tmp).glob("*.pt")
        else:
            raise ValueError(
                f"config key 'labels.model': {name_or_path!r} is neither a file nor one of "
                f"openai-whisper's models ({', '.join(whisper.available_models())})"
            )
        # Prove it loads (weights_only torch.load inside openai-whisper) before keeping it.
        whisper.load_model(str(src), device="cpu")
        staged = Path(tmp) / ".staged.pt"
        shutil.copyfile(src, staged)
        os.replace(staged, final)


@dataclass(frozen=True)
class Shapes:
    """Calibration shapes of a model, all read from its config."""

    n_mels: int  # mel bins: 80, or 128 for large-v3
    n_frames: int  # mel frames of a 30 s window (2 x encoder positions)
    n_source: int  # encoder output positions (1500)
    d_model: int  # hidden width (768 for whisper-small)


def shapes(snapshot: str) -> Shapes:
    """From the snapshot's config.json, read as JSON: the keys every saved Whisper
    config has (WhisperConfig writes them all)."""
    path = os.path.join(snapshot, "config.json")
    cfg = atomic.read_json(path)
    keys = ("num_mel_bins", "max_source_positions", "d_model")
    missing = [k for k in keys if not isinstance(cfg, dict) or not isinstance(cfg.get(k), int)]
    if missing:
        raise ValueError(f"{path}: no integer {missing}; is this a Whisper checkpoint?")
    return Shapes(
        n_mels=cfg["num_mel_bins"],
        n_frames=2 * cfg["max_source_positions"],
        n_source=cfg["max_source_positions"],
        d_model=cfg["d_model"],
    )


# openai-whisper's rule, which transformers' checkpoints follow: a multilingual vocabulary
# has 51865 ids or more (large-v3: 51866), an English-only one 51864.
MULTILINGUAL_VOCAB = 51865


def is_multilingual(folder: str) -> bool:
    """Whether a saved Whisper decodes with language and task tokens, from its own
    config files (never its folder's name): the generation config's `is_multilingual`,
    which `generate` reads, checked against the vocabulary size; a checkpoint saved
    without the flag is judged by the vocabulary alone."""
    cfg = atomic.read_json(os.path.join(folder, "config.json"))
    vocab = cfg.get("vocab_size")
    if not isinstance(vocab, int):
        raise ValueError(f"{folder}/config.json: no integer vocab_size; is this a Whisper checkpoint?")
    generation = os.path.join(folder, "generation_config.json")
    flag = atomic.read_json(generation).get("is_multilingual") if os.path.exists(generation) else None
    by_vocab = vocab >= MULTILINGUAL_VOCAB
    if flag is not None and bool(flag) != by_vocab:
        raise ValueError(
            f"{generation}: is_multilingual is {flag} but the vocabulary has {vocab} ids "
            f"({'multilingual' if by_vocab else 'English-only'} Whisper vocabularies have "
            f"{'>=' if by_vocab else '<'} {MULTILINGUAL_VOCAB})"
        )
    return by_vocab
