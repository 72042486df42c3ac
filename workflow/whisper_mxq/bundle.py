"""Step 4: the runtime bundle, the model folder Mobilint's NPU runtime loads (FACTS.md §6).

The NPU runs the encoder and the decoder layers from the two .mxq files; the host
tokenizes, computes log-mel features and the decoder input embed_tokens(ids) +
embed_positions (as the calibration does), so the folder carries the source model's
config (plus the runtime's keys), processor and generation config, and of its weights
only those two embedding tables.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import atomic, layout

RUNTIME_MODEL_TYPE = "mobilint-whisper"
RUNTIME_ARCHITECTURE = "MobilintWhisperForConditionalGeneration"
EMBEDDINGS = ("model.decoder.embed_tokens.weight", "model.decoder.embed_positions.weight")
SAFETENSORS_INDEX = "model.safetensors.index.json"  # sharded snapshots (large-v3 in fp32)


def runtime_config(base: dict, encoder_mxq: str, decoder_mxq: str, dev_no: int = 0) -> dict:
    """The base WhisperConfig (all fields, as the runtime may run another transformers
    with other defaults) plus what the runtime reads: .mxq names inside the folder."""
    if base.get("model_type") != "whisper":
        raise ValueError(f"not a Whisper config (model_type {base.get('model_type')!r})")
    config = {k: v for k, v in base.items() if k != "_name_or_path"}  # no host paths
    config.update(
        model_type=RUNTIME_MODEL_TYPE,
        encoder_mxq_path=encoder_mxq,
        decoder_mxq_path=decoder_mxq,
        dev_no=dev_no,
        architectures=[RUNTIME_ARCHITECTURE],
    )
    return config


def _weight_files(snapshot: str) -> dict[str, str]:
    """Tensor name -> safetensors file holding it, for a single-file or sharded snapshot."""
    folder = Path(snapshot)
    index = folder / SAFETENSORS_INDEX
    if index.exists():
        return {k: str(folder / f) for k, f in atomic.read_json(index)["weight_map"].items()}
    single = folder / layout.BUNDLE_EMBEDDINGS
    if not single.exists():
        raise FileNotFoundError(f"{snapshot}: no {single.name} nor {SAFETENSORS_INDEX}")
    from safetensors import safe_open

    with safe_open(single, framework="pt") as f:
        return {k: str(single) for k in f.keys()}


def read_embeddings(snapshot: str) -> dict:
    """The decoder's token and position tables, read lazily: never the whole model."""
    from safetensors import safe_open

    files = _weight_files(snapshot)
    missing = [k for k in EMBEDDINGS if k not in files]
    if missing:
        raise KeyError(f"{snapshot}: weights lack {missing}")
    tables = {}
    for key in EMBEDDINGS:
        with safe_open(files[key], framework="pt") as f:
            tables[key] = f.get_tensor(key).contiguous()
    return tables


def write_embeddings(path: str | os.PathLike, tables: dict) -> None:
    from safetensors.torch import save_file

    # format=pt: what transformers' from_pretrained checks in the header.
    save_file(tables, str(path), metadata={"format": "pt"})


def build_bundle(snapshot: str, encoder_mxq: str, decoder_mxq: str, out_dir: str) -> None:
    """Model snapshot + compiled .mxq files -> the runtime folder `out_dir`, atomically."""
    from transformers import GenerationConfig, WhisperConfig

    from .models import load_processor

    enc_name, dec_name = os.path.basename(encoder_mxq), os.path.basename(decoder_mxq)
    if enc_name == dec_name:
        raise ValueError(f"encoder and decoder .mxq share the name {enc_name!r}")
    base = WhisperConfig.from_pretrained(snapshot, local_files_only=True).to_dict()
    processor = load_processor(snapshot)
    generation = GenerationConfig.from_pretrained(snapshot, local_files_only=True)
    tables = read_embeddings(snapshot)
    # Staged beside out_dir and renamed: the runtime never finds one .mxq and no config.
    with atomic.atomic_dir(out_dir) as tmp:
        shutil.copyfile(encoder_mxq, tmp / enc_name)
        shutil.copyfile(decoder_mxq, tmp / dec_name)
        processor.save_pretrained(tmp)
        # preprocessor_config.json too: transformers 4.x (beside the runtime) reads it,
        # transformers 5 reads processor_config.json.
        processor.feature_extractor.save_pretrained(tmp)
        generation.save_pretrained(tmp)
        write_embeddings(tmp / layout.BUNDLE_EMBEDDINGS, tables)
        atomic.write_json(tmp / layout.BUNDLE_CONFIG, runtime_config(base, enc_name, dec_name))
