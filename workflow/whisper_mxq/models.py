"""Model snapshots: fetch once into models/, then every job loads offline from there.

Cluster nodes often have no internet, and a Hub download per job would be paid
hundreds of times; so one job saves the model and its processor with
`save_pretrained`, and later jobs open that folder with `local_files_only=True`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import atomic, audio

# torch and transformers are imported where used: the list-writing jobs only read
# shapes(), and importing both costs ~4 s of CPU per job.


def _fp32() -> dict:
    """`dtype=` since transformers 4.56; the tutorial's pinned 4.50 spells it torch_dtype."""
    import torch
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": torch.float32} if (major, minor) >= (4, 56) else {"torch_dtype": torch.float32}


def snapshot_model(source: str, out_dir: str, key: str = "model") -> None:
    """Hub id or local folder -> `out_dir` with weights (safetensors), processor, config.

    Refused, naming `key`, unless it is a Whisper whose every weight loads (nothing
    missing, nothing newly initialised) and whose tokenizer, generation config and
    feature extractor agree with it: a local folder is checked from its files first
    (cheap), then every source by loading it, and the folder written is checked again.
    """
    from transformers import WhisperForConditionalGeneration

    check_model_source(source, key)
    _check_config_type(source, key)
    processor = _load_processor(source, key)
    # safetensors only: a pickled pytorch_model.bin from the Hub is refused.
    try:
        model, info = WhisperForConditionalGeneration.from_pretrained(
            source, use_safetensors=True, output_loading_info=True, **_fp32()
        )
    except (OSError, ValueError, RuntimeError) as e:  # safetensors' errors are among these
        raise ValueError(
            f"config key {key!r}: cannot load safetensors weights from {source!r} "
            f"(pickled pytorch_model.bin checkpoints are refused): {_first_line(e)}"
        ) from e
    check_loaded(source, key, model, processor, info)
    with atomic.atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        save_processor(processor, tmp)
        check_model_folder(str(tmp), key)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_config_type(source: str, key: str) -> None:
    """model_type from config.json as written: WhisperConfig.from_pretrained would turn
    any config into a Whisper's (with a warning) and the weights into random ones."""
    from transformers import PretrainedConfig

    try:
        cfg, _ = PretrainedConfig.get_config_dict(source)
    except (OSError, ValueError) as e:
        raise ValueError(
            f"config key {key!r}: {source!r} is neither a local model folder (nothing at "
            f"{os.path.abspath(source)}) nor a model the Hub serves here: {_first_line(e)}"
        ) from e
    if cfg.get("model_type") != "whisper":
        raise ValueError(
            f"config key {key!r}: {source!r} holds a {cfg.get('model_type')!r} model, not a Whisper "
            "(config.json model_type)"
        )


def _load_processor(source: str, key: str):
    from transformers import WhisperProcessor

    try:
        return WhisperProcessor.from_pretrained(source)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ValueError(
            f"config key {key!r}: {source!r} has no usable Whisper processor "
            f"(tokenizer + feature extractor files): {_first_line(e)}"
        ) from e


def check_loaded(source: str, key: str, model, processor, info: dict) -> None:
    """What from_pretrained reported, and the loaded tokenizer against the model."""
    where = f"config key {key!r}: {source!r}"
    problems = {
        "missing (they would be newly initialised at random)": sorted(info.get("missing_keys") or ()),
        "of another shape than the config's": sorted(
            str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or ()
        ),
        "not part of a Whisper (a checkpoint of another model?)": sorted(info.get("unexpected_keys") or ()),
    }
    for what, keys in problems.items():
        if keys:
            raise ValueError(
                f"{where}: {len(keys)} weights {what}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            )
    if info.get("error_msgs"):
        raise ValueError(f"{where}: weights do not load: {_first_line(Exception(info['error_msgs'][0]))}")
    tok = processor.tokenizer
    ids = {}
    for token in (*CONTROL_TOKENS, *_language_tokens(model.generation_config)):
        i = tok.convert_tokens_to_ids(token)
        if isinstance(i, int) and (i != tok.unk_token_id or token == tok.unk_token):  # unknown -> unk id
            ids[token] = i
    check_agreement(
        where,
        ids,
        len(tok),
        model.config.to_dict(),
        model.generation_config.to_dict(),
        processor.feature_extractor.feature_size,
    )


def _language_tokens(generation) -> list[str]:
    return list(getattr(generation, "lang_to_id", None) or {})


# --- what a model folder must hold, read from its files ------------------------------
# The control tokens whose ids the workflow writes into prompts; a tokenizer that gives
# them other ids than the model's configs shifts every prompt (an English-only tokenizer
# beside a multilingual model is off by one).
CONTROL_TOKENS = ("<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>", "<|notimestamps|>")
# Bounds no Whisper comes near (vocabularies have 51864-51866 ids, widths 384-1280): a
# config beyond them is corrupt, and loading it would allocate the impossible.
MAX_VOCAB, MAX_WIDTH, MAX_LAYERS, MAX_POSITIONS, MAX_MELS = 1 << 20, 1 << 14, 256, 1 << 16, 1024
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # safetensors' own limit
_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


def looks_like_path(value: str) -> bool:
    """A value only a local path can be (a Hub id is `name` or `org/name`)."""
    return (
        value.startswith(("/", "./", "../", "~"))
        or value.endswith("/")
        or value in (".", "..")
        or value.count("/") > 1
        or "\\" in value
    )


def check_model_source(value: str, key: str = "model") -> None:
    """Before any job: a local folder gets the cheap checks of check_model_folder; a
    path that does not exist is an error naming `key`; a Hub id (`org/name`) is left to
    the snapshot job, which loads and checks it."""
    if os.path.isdir(value):
        check_model_folder(value, key)
    elif os.path.lexists(value):
        raise ValueError(f"config key {key!r}: {value!r} is a file, not a model folder")
    elif looks_like_path(value):
        raise ValueError(f"config key {key!r}: {value!r} does not exist (nothing at {os.path.abspath(value)})")


def check_model_folder(folder: str, key: str = "model") -> None:
    """A saved Whisper, from its JSON files and safetensors headers only (no weights
    read): model type, plausible sizes, complete weight files whose anchor tensors
    have the config's shapes, and a tokenizer, generation config and feature extractor
    that agree with the model. Each error names `key`, the folder and what is wrong."""
    where = f"config key {key!r}: {folder}"
    cfg = _folder_json(folder, "config.json", where, required=True)
    if cfg.get("model_type") != "whisper":
        raise ValueError(f"{where} holds a {cfg.get('model_type')!r} model, not a Whisper (config.json model_type)")
    _check_sizes(cfg, where)
    _check_weights(weight_shapes(folder, where), cfg, where)
    ids, n_tokens = tokenizer_ids(folder, where)
    generation = _folder_json(folder, "generation_config.json", where) or {}
    check_agreement(where, ids, n_tokens, cfg, generation, _feature_size(folder, where))


def _folder_json(folder: str, name: str, where: str, required: bool = False) -> dict | None:
    path = os.path.join(folder, name)
    if not os.path.lexists(path):
        if required:
            raise ValueError(f"{where}: no {name}; not a save_pretrained model folder")
        return None
    try:
        value = json.loads(audio.read_regular_file(path, 64 * 1024 * 1024))
    except (ValueError, audio.BadAudio) as e:  # BadAudio: a FIFO, a device, a huge file
        raise ValueError(f"{where}: {name} is not readable JSON ({e})") from e
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {name} holds no JSON object")
    return value


_SIZES = {
    "vocab_size": MAX_VOCAB,
    "d_model": MAX_WIDTH,
    "num_mel_bins": MAX_MELS,
    "max_source_positions": MAX_POSITIONS,
    "max_target_positions": MAX_POSITIONS,
    "encoder_layers": MAX_LAYERS,
    "decoder_layers": MAX_LAYERS,
}


def _check_sizes(cfg: dict, where: str) -> None:
    for name, limit in _SIZES.items():
        value = cfg.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= limit:
            raise ValueError(
                f"{where}: config.json {name} = {value!r} is impossible for a Whisper "
                f"(a positive integer up to {limit} was expected)"
            )


def weight_shapes(folder: str, where: str) -> dict[str, list[int]]:
    """Tensor name -> shape over the folder's safetensors files (one file, or the shards
    an index names), from their headers; a file shorter than its header says (cut off
    in a copy or a download) is an error naming it."""
    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.lexists(single):
        files = [single]
    elif os.path.lexists(index):
        weight_map = (_folder_json(folder, "model.safetensors.index.json", where) or {}).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{where}: model.safetensors.index.json has no weight_map")
        names = sorted(set(weight_map.values()))
        bad = [n for n in names if not isinstance(n, str) or os.path.basename(n) != n or n in (".", "..")]
        if bad:
            raise ValueError(f"{where}: model.safetensors.index.json names shards outside the folder: {bad[:3]}")
        files = [os.path.join(folder, n) for n in names]
    else:
        raise ValueError(
            f"{where}: no model.safetensors (weights are read from safetensors only; "
            "pickled pytorch_model.bin checkpoints are refused)"
        )
    shapes: dict[str, list[int]] = {}
    for path in files:
        shapes.update(safetensors_shapes(path, where))
    return shapes


def safetensors_shapes(path: str, where: str) -> dict[str, list[int]]:
    """Tensor name -> shape from a safetensors header, checked against the file's size."""
    name = os.path.basename(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        size = info.st_size
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little") if size >= 8 else -1
            if not 0 < n <= min(MAX_SAFETENSORS_HEADER, size - 8):
                raise ValueError(
                    f"its header length ({n}) does not fit the file ({size} bytes): truncated or not safetensors"
                )
            header = json.loads(f.read(n))
    except (OSError, ValueError) as e:
        raise ValueError(f"{where}: weights {name} are unreadable ({e})") from e
    data_bytes = size - 8 - n
    shapes = {}
    for tensor, meta in header.items():
        if tensor == "__metadata__":
            continue
        try:
            start, end = meta["data_offsets"]
            expected = _DTYPE_BYTES[meta["dtype"]] * math.prod(meta["shape"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: weights {name}: tensor {tensor} has a malformed header entry") from e
        if end > data_bytes:
            raise ValueError(
                f"{where}: weights {name} are truncated: tensor {tensor} ends at byte {end} of "
                f"the data, the file holds {data_bytes}"
            )
        if end - start != expected:
            raise ValueError(
                f"{where}: weights {name}: tensor {tensor} spans {end - start} bytes, its "
                f"{meta['dtype']} shape {meta['shape']} needs {expected}"
            )
        shapes[tensor] = list(meta["shape"])
    return shapes


def _check_weights(shapes: dict[str, list[int]], cfg: dict, where: str) -> None:
    """Whisper's anchor tensors with the config's shapes (the audio convolutions no other
    model has), and every encoder and decoder layer the config counts."""
    plain = {k.removeprefix("model."): v for k, v in shapes.items()}
    d = cfg["d_model"]
    anchors = {
        "encoder.conv1.weight": [d, cfg["num_mel_bins"], 3],
        "encoder.embed_positions.weight": [cfg["max_source_positions"], d],
        "decoder.embed_tokens.weight": [cfg["vocab_size"], d],
        "decoder.embed_positions.weight": [cfg["max_target_positions"], d],
    }
    missing = [k for k in anchors if k not in plain]
    if missing:
        raise ValueError(f"{where}: the weights lack Whisper's {missing} (a checkpoint of another model?)")
    for name, shape in anchors.items():
        if plain[name] != shape:
            raise ValueError(f"{where}: weight {name} has shape {plain[name]}, config.json implies {shape}")
    for part, count in (("encoder", cfg["encoder_layers"]), ("decoder", cfg["decoder_layers"])):
        found = {int(k.split(".")[2]) for k in plain if k.startswith(f"{part}.layers.") and k.split(".")[2].isdigit()}
        if found != set(range(count)):
            raise ValueError(
                f"{where}: config.json counts {count} {part} layers, the weights hold layers "
                f"{sorted(found)[:8]}{' ...' if len(found) > 8 else ''}"
            )


def tokenizer_ids(folder: str, where: str) -> tuple[dict[str, int], int]:
    """(id of every added token, number of ids) from tokenizer.json, or from vocab.json
    with added_tokens.json / tokenizer_config.json."""
    tok = _folder_json(folder, "tokenizer.json", where)
    if tok is not None:
        vocab = (tok.get("model") or {}).get("vocab") or {}
        added = {t["content"]: t["id"] for t in tok.get("added_tokens") or []}
    else:
        vocab = _folder_json(folder, "vocab.json", where)
        if vocab is None:
            raise ValueError(f"{where}: no tokenizer (tokenizer.json, or vocab.json and merges.txt)")
        added = dict(_folder_json(folder, "added_tokens.json", where) or {})
        decoder = (_folder_json(folder, "tokenizer_config.json", where) or {}).get("added_tokens_decoder") or {}
        added.update({t["content"]: int(i) for i, t in decoder.items()})
    ids = [*vocab.values(), *added.values()]
    if not ids or not all(isinstance(i, int) for i in ids):
        raise ValueError(f"{where}: the tokenizer's vocabulary is empty or malformed")
    return added, max(ids) + 1


def _feature_size(folder: str, where: str) -> int | None:
    pre = _folder_json(folder, "preprocessor_config.json", where)
    if pre is None:  # transformers 5 may keep it inside processor_config.json
        pre = (_folder_json(folder, "processor_config.json", where) or {}).get("feature_extractor")
    if not isinstance(pre, dict):
        raise ValueError(f"{where}: no feature extractor (preprocessor_config.json)")
    return pre.get("feature_size")


def check_agreement(
    where: str, ids: dict[str, int], n_tokens: int, cfg: dict, generation: dict, feature_size: int | None
) -> None:
    """Tokenizer, configs and feature extractor describe one model: the special ids the
    prompts are built from, the vocabulary size, the mel bins."""
    vocab = cfg["vocab_size"]
    if n_tokens > vocab:
        raise ValueError(
            f"{where}: the tokenizer has {n_tokens} ids but the model's vocabulary (config.json "
            f"vocab_size) {vocab}: the tokenizer does not belong to this model"
        )
    lacking = [t for t in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>") if t not in ids]
    if lacking:
        raise ValueError(f"{where}: the tokenizer lacks Whisper's special tokens {lacking}")
    expected = [
        ("config.json decoder_start_token_id", cfg.get("decoder_start_token_id"), "<|startoftranscript|>"),
        ("config.json eos_token_id", cfg.get("eos_token_id"), "<|endoftext|>"),
        (
            "generation_config.json decoder_start_token_id",
            generation.get("decoder_start_token_id"),
            "<|startoftranscript|>",
        ),
        ("generation_config.json eos_token_id", generation.get("eos_token_id"), "<|endoftext|>"),
        ("generation_config.json no_timestamps_token_id", generation.get("no_timestamps_token_id"), "<|notimestamps|>"),
        *((f"generation_config.json lang_to_id {t}", i, t) for t, i in (generation.get("lang_to_id") or {}).items()),
        *(
            (f"generation_config.json task_to_id {task}", i, f"<|{task}|>")
            for task, i in (generation.get("task_to_id") or {}).items()
        ),
    ]
    for field, value, token in expected:
        values = value if isinstance(value, list) else [value]
        if value is not None and ids.get(token) not in values:
            raise ValueError(
                f"{where}: the tokenizer's {token} is id {ids.get(token)} but {field} is {value}: the tokenizer "
                "does not belong to this model (an English-only tokenizer beside a multilingual model, or the "
                "other way round, shifts every prompt id by one)"
            )
    if feature_size is not None and feature_size != cfg["num_mel_bins"]:
        raise ValueError(
            f"{where}: the feature extractor makes {feature_size} mel bins, the model takes "
            f"{cfg['num_mel_bins']} (config.json num_mel_bins)"
        )


# --- writing a processor both transformers 4.50 and 5 read -----------------------------
def save_processor(processor, folder: str | os.PathLike) -> None:
    """processor.save_pretrained, then the files made portable (make_portable): the
    compile environment pins transformers 4.50, the rest may run 5."""
    from transformers import WhisperTokenizerFast

    processor.save_pretrained(folder)
    processor.feature_extractor.save_pretrained(folder)  # preprocessor_config.json
    if not os.path.exists(os.path.join(folder, "tokenizer.json")):
        # transformers 4's WhisperProcessor holds the slow tokenizer, which writes no
        # tokenizer.json; the fast one, loaded from those files, adds it.
        WhisperTokenizerFast.from_pretrained(folder, local_files_only=True).save_pretrained(folder)
    make_portable(folder)


def make_portable(folder: str | os.PathLike) -> None:
    """Rewrite a saved processor into the layout of the Hub's Whisper repositories,
    which transformers 4.50 and 5 both read.

    transformers 5 writes `extra_special_tokens` as a list (4.50 expects a mapping
    there and fails), keeps the feature extractor inside processor_config.json (4.50
    passes it to WhisperProcessor a second time and fails), and writes no vocab.json /
    merges.txt (4.50's WhisperProcessor loads the slow tokenizer, which needs them).
    Files already in the Hub's layout are left as they are.
    """
    folder = str(folder)
    config_path = os.path.join(folder, "tokenizer_config.json")
    tok_config = atomic.read_json(config_path)
    tokenizer = atomic.read_json(os.path.join(folder, "tokenizer.json"))
    if isinstance(tok_config.get("extra_special_tokens"), list):
        tok_config["additional_special_tokens"] = tok_config.pop("extra_special_tokens")
    tok_config.setdefault(
        "added_tokens_decoder",
        {
            str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for t in tokenizer.get("added_tokens") or []
        },
    )
    atomic.write_json(config_path, tok_config)
    model = tokenizer["model"]
    if not os.path.exists(os.path.join(folder, "vocab.json")):
        atomic.write_json(os.path.join(folder, "vocab.json"), model["vocab"])
    if not os.path.exists(os.path.join(folder, "merges.txt")):
        lines = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
        atomic.write_text(os.path.join(folder, "merges.txt"), "#version: 0.2\n" + "\n".join(lines) + "\n")
    processor_config = os.path.join(folder, "processor_config.json")
    if os.path.exists(processor_config) and os.path.exists(os.path.join(folder, "preprocessor_config.json")):
        os.unlink(processor_config)  # the Hub's Whisper repositories have none either


def load_model(snapshot: str, device: str = "cpu"):
    """The snapshot as a float32 model in eval mode; never touches the network."""
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(
        snapshot, local_files_only=True, use_safetensors=True, **_fp32()
    )
    return model.eval().to(device)


def load_tokenizer(snapshot: str):
    """The snapshot's tokenizer alone: WhisperProcessor's import costs seconds more (it
    pulls in transformers' processing and model machinery)."""
    from transformers import WhisperTokenizerFast

    try:
        return WhisperTokenizerFast.from_pretrained(snapshot, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{snapshot}: no usable Whisper tokenizer ({e})") from e


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
    if cfg.get("model_type") != "whisper":  # before anything Whisper-specific is asked of it
        raise ValueError(f"{folder} holds a {cfg.get('model_type')!r} model, not a Whisper (config.json model_type)")
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
