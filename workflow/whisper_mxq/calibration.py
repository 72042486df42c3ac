"""Step 2: calibration data for the encoder and the decoder, in the tutorial's formats.

Encoder: the feature extractor's `input_features` of each clip, [1, n_mels, 3000]
transposed to [1, 3000, n_mels] float32 (the layout the NPU encoder takes).

Decoder: per sample, the encoder's last hidden state [1, n_source, d_model] and the
decoder input [1, T, d_model] = token embeddings + positional embeddings (no scaling)
of prompt + generated text + end-of-text, with the task drawn from (seed, sample id).
Shapes and special-token ids come from the model's config and tokenizer.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import atomic, audio, decoding, layout
from .languages import whisper_code

log = logging.getLogger(__name__)

TASK_TYPES = {"transcribe": "transcription_with_lang", "translate": "translation_with_lang"}
TASK_TYPES_NO_LANG = {"transcribe": "transcription_no_lang"}  # English-only models
# openai-whisper's rule: multilingual vocabularies have 51865 ids or more (large-v3 51866).
MULTILINGUAL_VOCAB = 51865


# --- encoder -------------------------------------------------------------------
def encoder_features(feature_extractor, samples: np.ndarray) -> np.ndarray:
    """16 kHz mono samples -> [1, frames, n_mels] float32, C-contiguous."""
    feats = feature_extractor(
        samples, sampling_rate=audio.SAMPLE_RATE, return_tensors="np"
    ).input_features
    return np.ascontiguousarray(feats.transpose(0, 2, 1), dtype=np.float32)


def calibrate_encoder(snapshot: str, wav_paths: list[str], npy_paths: list[str]) -> None:
    """Encoder features only (calibrate_group makes them together with the decoder files)."""
    fe = _feature_extractor(snapshot)
    for wav, npy in zip(wav_paths, npy_paths, strict=True):
        _features_to_file(fe, wav, npy)


def _feature_extractor(snapshot: str):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor.from_pretrained(snapshot, local_files_only=True)


def _features_to_file(fe, wav: str, npy: str) -> np.ndarray:
    """One clip's encoder features, saved and returned: the decoder files are computed
    from exactly the array saved."""
    feats = encoder_features(fe, audio.load(wav))
    atomic.write_npy(npy, feats, durable=False)
    return feats


def write_encoder_list(npy_paths: list[str], out_txt: str, n_mels: int, n_frames: int) -> None:
    """The list qbcompiler reads: one absolute path per line, in the given order."""
    for path in npy_paths:
        check_npy(path, (1, n_frames, n_mels))
    atomic.write_text(out_txt, "".join(os.path.abspath(p) + "\n" for p in npy_paths))


def check_npy(path: str, shape: tuple) -> None:
    """Header and size check without reading the data: catches truncated files."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npy file ({e})") from e
    ok = arr.dtype == np.float32 and len(arr.shape) == len(shape) and all(
        want in (-1, got) for want, got in zip(shape, arr.shape)
    )
    if not ok:
        raise ValueError(f"{path}: {arr.dtype}{list(arr.shape)}, expected float32{list(shape)}")


# --- decoder -------------------------------------------------------------------
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
    return tuple(
        t.weight.detach().float().cpu().numpy() for t in (decoder.embed_tokens, decoder.embed_positions)
    )


def decoder_input(tables: tuple[np.ndarray, np.ndarray], ids: list[int]) -> np.ndarray:
    """embed_tokens(ids) + embed_positions(0..T-1) from embedding_tables: what the host
    hands the NPU decoder (a host lookup, no device round trip)."""
    tokens, positions = tables
    return (tokens[ids] + positions[: len(ids)])[None].astype(np.float32, copy=False)


def is_multilingual(model) -> bool:
    """The generation config's flag, which `generate` reads; for a checkpoint saved
    without it, the vocabulary size (a default of False would silently drop the language
    and task tokens of a multilingual model)."""
    return _multilingual(getattr(model.generation_config, "is_multilingual", None), model.config.vocab_size)


def snapshot_is_multilingual(snapshot: str) -> bool:
    """is_multilingual from the snapshot's JSON files, before (and without) loading the
    model: a calibrate job plans its batches while the model loads."""
    generation = os.path.join(snapshot, "generation_config.json")
    flag = atomic.read_json(generation).get("is_multilingual") if os.path.exists(generation) else None
    return _multilingual(flag, atomic.read_json(os.path.join(snapshot, "config.json"))["vocab_size"])


def _multilingual(flag, vocab_size: int) -> bool:
    return bool(flag) if flag is not None else vocab_size >= MULTILINGUAL_VOCAB


def _require_english(snapshot: str, samples: list[str]) -> None:
    """An English-only model only ever decodes English: on other speech it would generate
    text unlike anything it sees in use, and the decoder would be calibrated on that."""
    langs = {layout.sample_lang(s) for s in samples}
    foreign = sorted(lang for lang in langs if whisper_code(lang) != "en")
    if foreign:
        raise ValueError(
            f"{snapshot} is an English-only Whisper model (no language tokens) and cannot be "
            f"calibrated on {foreign}: set config key 'languages' to [en_us]"
        )


@dataclass(frozen=True)
class DecoderSettings:
    seed: int = 0
    translate_ratio: float = 0.2
    max_new_tokens: int = 224
    batch_size: int | str = "auto"  # auto: GPU_BATCH on cuda, CPU_BATCH on cpu
    normalize_text: bool = False
    dtype: str = "auto"  # generation only (auto, fp32, fp16, bf16); saved tensors are fp32


# Measured on the H100 (tests/benchmarks/RESULTS.md): batch 64 decodes ~2x the clips/s
# of batch 16; 32 keeps large-v3's cross-attention cache (32 layers x 1500 x 1280 per
# row, ~8 GB at fp16) inside a 24 GB card. On CPU a larger batch buys nothing.
GPU_BATCH, CPU_BATCH = 32, 8


def batch_size(setting: int | str, device: str) -> int:
    if setting == "auto":
        return GPU_BATCH if str(device).startswith("cuda") else CPU_BATCH
    if not isinstance(setting, int) or setting < 1:
        raise ValueError(f"config key 'calibration.batch_size': {setting!r} is not a positive integer or 'auto'")
    return setting


GENERATION_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def generation_model(model, dtype: str):
    """The model `generate` runs: the fp32 model itself, or a half-precision copy.
    The copy only decodes; encoder states and embeddings come from the fp32 model."""
    import copy

    import torch

    if dtype == "auto":  # half precision where it is fast
        dtype = "fp16" if model.device.type == "cuda" else "fp32"
    if dtype not in GENERATION_DTYPES:
        raise ValueError(f"config key 'calibration.dtype': {dtype!r} is not one of {list(GENERATION_DTYPES)}")
    if dtype == "fp32":
        return model
    return copy.deepcopy(model).to(getattr(torch, GENERATION_DTYPES[dtype]))


def _encode(model, feats):
    import torch

    with torch.no_grad():
        return model.get_encoder()(feats).last_hidden_state


def calibrate_decoder(
    snapshot: str,
    samples: list[str],
    encoder_npys: list[str],
    out_dirs: list[str],
    settings: DecoderSettings,
    device: str = "cpu",
    threads: int = 2,
) -> None:
    """Decoder files from encoder features saved earlier (calibrate_group makes both)."""
    _calibrate(snapshot, samples, out_dirs, settings, device, threads, lambda i: atomic.read_npy(encoder_npys[i]))


def calibrate_group(
    snapshot: str,
    samples: list[str],
    wav_paths: list[str],
    encoder_npys: list[str],
    out_dirs: list[str],
    settings: DecoderSettings,
    device: str = "cpu",
    threads: int = 2,
) -> None:
    """One calibrate job: each sample's encoder features, and its decoder files computed
    from exactly those features, with one model load for the whole group. Features are
    made on `threads` threads while the model loads and the device works."""
    fe = _feature_extractor(snapshot)
    _calibrate(snapshot, samples, out_dirs, settings, device, threads,
               lambda i: _features_to_file(fe, wav_paths[i], encoder_npys[i]))


def plan_batches(languages: list[str], tasks: list[str], per_batch: int) -> list[list[int]]:
    """Sample indices per batch, in a fixed order: sorted by (language, task), then cut
    into batches of per_batch. Prompts differ only in their language and task tokens,
    never in length, so rows of any (language, task) share a batch without padding or
    masks, and batches stay full (small languages would otherwise make many small
    ones, each a new shape for the decoder's captured graph)."""
    order = sorted(range(len(languages)), key=lambda i: (languages[i], tasks[i], i))
    return [order[k : k + per_batch] for k in range(0, len(order), per_batch)]


# Batches whose features are being made ahead of the device: enough to keep it fed,
# few enough to bound host memory (a batch of 32 whisper-small clips is ~30 MB).
_FEATURES_AHEAD = 2
# Batches handed to the writers and not yet on disk (~5 MB a sample).
_WRITES_PENDING = 2


def _calibrate(snapshot, samples, out_dirs, settings: DecoderSettings, device: str, threads: int,
               features) -> None:
    """The pipeline of a calibrate job: `features(i)` (sample i's [1, frames, n_mels]
    array) runs on a pool of `threads` threads, batches ahead of the device; the model
    loads meanwhile; the device encodes and decodes batch after batch; a writer thread
    copies each batch's states to the host and writes its files. The log ends with where
    the job's time went."""
    import torch

    from .models import load_model, load_processor

    clock = _Clock()
    # the rule's threads, not every core (never more than torch's default, one a core)
    torch.set_num_threads(max(1, min(threads, torch.get_num_threads())))
    multilingual = snapshot_is_multilingual(snapshot)
    if not multilingual:
        _require_english(snapshot, samples)
    tasks = [choose_task(settings.seed, s, settings.translate_ratio, multilingual) for s in samples]
    languages = [whisper_code(layout.sample_lang(s)) for s in samples]
    plan = plan_batches(languages, tasks, batch_size(settings.batch_size, device))
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="features") as readers, \
            ThreadPoolExecutor(1, thread_name_prefix="writer") as writer:
        try:
            made: dict[int, Future] = {}

            def ahead(k: int) -> None:
                for i in plan[k] if k < len(plan) else []:
                    made[i] = readers.submit(features, i)

            for k in range(_FEATURES_AHEAD):
                ahead(k)
            with clock("load the model"):
                model = load_model(snapshot, device)
                generator = generation_model(model, settings.dtype)
                tokenizer = load_processor(snapshot).tokenizer
                tables = embedding_tables(model)
                greedy = decoding.Greedy(generator, settings.max_new_tokens)
            eot = tokenizer.eos_token_id
            prompts = [prompt(tokenizer, lang, task, multilingual) for lang, task in zip(languages, tasks)]
            max_len = model.config.max_target_positions
            pending: collections.deque = collections.deque()
            for k, batch in enumerate(plan):
                ahead(k + _FEATURES_AHEAD)
                with clock("wait for features"):
                    feats = np.concatenate([made.pop(i).result() for i in batch])
                with clock("encode and decode"):
                    feats = torch.from_numpy(feats).transpose(1, 2).contiguous().to(device)
                    encoded = _encode(model, feats)
                    # encoded once above; generate would run the encoder a second time
                    generated = greedy(encoded, [prompts[i].ids for i in batch])
                rows = []
                for row, i in enumerate(batch):
                    p = prompts[i]
                    text = text_ids(generated[row], eot)
                    if settings.normalize_text:  # the tutorial's EnglishTextNormalizer pass
                        norm = tokenizer.normalize(tokenizer.decode(text)).strip()
                        text = tokenizer.encode(norm, add_special_tokens=False) if norm else text
                    ids = sequence(p.ids, text, eot, max_len)
                    rows.append((out_dirs[i], decoder_input(tables, ids), {
                        "sample": samples[i],
                        "task": tasks[i],
                        "task_type": p.task_type,
                        "source_language": languages[i],
                        "use_translation": tasks[i] == "translate",
                        "token_ids": ids,
                        "decoded_tokens": tokenizer.decode(ids, skip_special_tokens=False),
                    }))
                pending.append(writer.submit(_write_samples, encoded, rows))
                with clock("wait for writes"):  # result() re-raises a failed write here
                    while len(pending) > _WRITES_PENDING:
                        pending.popleft().result()
            with clock("wait for writes"):
                for done in pending:
                    done.result()
        except BaseException:
            # no more feature files once the job has failed: queued clips are dropped
            readers.shutdown(cancel_futures=True)
            raise
    log.info("calibrated %d samples in %d batches on %s: %s", len(samples), len(plan), device, clock)


class _Clock:
    """Wall seconds per named phase of the caller's thread, and the rest."""

    def __init__(self):
        self.start, self.spent = time.perf_counter(), collections.Counter()

    @contextlib.contextmanager
    def __call__(self, phase: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.spent[phase] += time.perf_counter() - t

    def __str__(self) -> str:
        total = time.perf_counter() - self.start
        parts = [f"{name} {s:.1f} s" for name, s in self.spent.items()]
        return ", ".join([*parts, f"other {total - sum(self.spent.values()):.1f} s", f"total {total:.1f} s"])


def _write_samples(encoded, rows: list[tuple]) -> None:
    """One batch's sample folders; the encoder states come to the host here, on the
    writer's thread, while the caller goes on to the next batch. No fsync: an fsync per
    file costs a disk flush for each of thousands of 5 MB files (on network filesystems,
    a server round trip each). The rename still keeps a killed job from leaving a
    partial file. A power cut during the job leaves it incomplete in Snakemake's
    metadata; one in the seconds after it ended, before the kernel wrote the data back,
    can leave renamed files that are empty or short (write_decoder_calib's header and
    size checks name them; delete them and re-run) or, on some filesystems, zero-filled."""
    states = encoded.float().cpu().numpy()
    for row, (out_dir, decoder_states, tokens) in enumerate(rows):
        atomic.write_npy(os.path.join(out_dir, layout.ENCODER_STATES_FILE), states[row : row + 1], durable=False)
        atomic.write_npy(os.path.join(out_dir, layout.DECODER_STATES_FILE), decoder_states, durable=False)
        # tokens.json last: its presence marks a complete sample folder.
        atomic.write_json(os.path.join(out_dir, layout.TOKENS_FILE), tokens, durable=False)


def write_decoder_calib(
    sample_dirs: list[str], out_json: str, out_metadata: str, d_model: int, n_source: int
) -> dict:
    """The tutorial's whisper_decoder_calib.json and its metadata list, absolute paths."""
    metadata = []
    for folder in sample_dirs:
        enc = os.path.abspath(os.path.join(folder, layout.ENCODER_STATES_FILE))
        dec = os.path.abspath(os.path.join(folder, layout.DECODER_STATES_FILE))
        check_npy(enc, (1, n_source, d_model))
        check_npy(dec, (1, -1, d_model))
        tokens = atomic.read_json(os.path.join(folder, layout.TOKENS_FILE))
        metadata.append({
            "encoder_hidden_states": enc,
            "decoder_hidden_states": dec,
            "task_type": tokens["task_type"],
            "source_language": tokens["source_language"],
            "use_translation": tokens["use_translation"],
            "decoded_tokens": tokens["decoded_tokens"],
            "token_ids": tokens["token_ids"],
        })
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
