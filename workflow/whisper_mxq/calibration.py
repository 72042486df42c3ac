"""Step 2: one calibrate job, encoder and decoder files of its samples with one model
load, plus the calibration report.

The job streams: features are made on the rule's threads (encoder_calibration) while
the model loads and the device works; each batch is encoded once in fp32, its text is
decoded greedily from those states (decoding.Greedy), and a writer thread saves the
per-sample files (decoder_calibration's formats). The job's summary, written last,
lists its samples with their task and tokens: the aggregate steps read it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import atomic, data, decoding, layout, metrics, models, network
from . import decoder_calibration as dec
from . import encoder_calibration as enc
from .languages import whisper_code

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """The `calibration:` config block (its defaults: the schema's)."""

    seed: int
    translate_ratio: float
    max_new_tokens: int
    batch_size: int | str  # auto: GPU_BATCH on cuda, CPU_BATCH on cpu
    normalize_text: bool
    dtype: str  # generation only (auto, fp32, fp16, bf16); saved tensors are fp32


# Measured on the H100: batch 64 decodes ~2x the clips/s of batch 16; 32 keeps
# large-v3's cross-attention cache (32 layers x 1500 x 1280 a row, ~8 GB at fp16) inside
# a 24 GB card. On a CPU a larger batch buys nothing.
GPU_BATCH, CPU_BATCH = 32, 8
# Batches whose features are being made ahead of the device: enough to keep it fed,
# few enough to bound host memory (a batch of 32 whisper-small clips is ~30 MB).
_FEATURES_AHEAD = 2
# Batches handed to the writers and not yet on disk (~5 MB a sample).
_WRITES_PENDING = 2


def batch_size(setting: int | str, device: str) -> int:
    if setting == "auto":
        return GPU_BATCH if str(device).startswith("cuda") else CPU_BATCH
    if not isinstance(setting, int) or setting < 1:
        raise ValueError(f"config key 'calibration.batch_size': {setting!r} is not a positive integer or 'auto'")
    return setting


def plan_batches(languages: list[str], tasks: list[str], per_batch: int) -> list[list[int]]:
    """Sample indices per batch, in a fixed order: sorted by (language, task), then cut
    into batches of per_batch. Prompts differ only in their language and task tokens,
    never in length, so rows of any (language, task) share a batch without padding or
    masks, and batches stay full (small languages would otherwise make many small
    ones, each a new shape for the decoder's captured graph)."""
    order = sorted(range(len(languages)), key=lambda i: (languages[i], tasks[i], i))
    return [order[k : k + per_batch] for k in range(0, len(order), per_batch)]


def calibrate_job(
    snapshot: str,
    manifest_path: str,
    stamp_path: str,
    features_paths: list[str],
    sample_dirs: list[str],
    summary_path: str,
    settings: Settings,
    device: str = "cpu",
    threads: int = 2,
) -> None:
    """One calibrate job over the clips of one download job: each sample's encoder
    features, and its decoder files computed from exactly the features saved."""
    manifest = data.read_manifest(stamp_path, manifest_path)
    clips = data.manifest_samples(manifest)
    samples = [s["file"].removesuffix(".wav") for s in clips]
    # the rule's outputs are named after the samples the plan gave this job
    if len(features_paths) != len(samples) or any(
        s not in os.path.basename(p) for s, p in zip(samples, features_paths)
    ):
        raise ValueError(
            f"{manifest_path}: its clips {samples[:3]}... are not this job's outputs {features_paths[:3]}..."
        )
    load_clip = data.clip_checker(manifest)
    fe = enc.feature_extractor(snapshot)

    def features(i: int) -> np.ndarray:
        feats = enc.encoder_features(fe, load_clip(clips[i]["wav"]))
        atomic.write_npy(features_paths[i], feats, durable=False)
        return feats

    entries = _calibrate(snapshot, samples, sample_dirs, settings, device, threads, features)
    atomic.write_json(summary_path, {"samples": entries})


def _calibrate(snapshot, samples, out_dirs, settings: Settings, device: str, threads: int, features) -> list[dict]:
    """The pipeline of a calibrate job: `features(i)` (sample i's [1, frames, n_mels]
    array) runs on a pool of `threads` threads, batches ahead of the device; the model
    loads meanwhile; the device encodes and decodes batch after batch; a writer thread
    copies each batch's states to the host and writes its files. Returns each sample's
    summary entry in sample order; the log ends with where the job's time went."""
    import torch

    clock = _Clock()
    # the rule's threads, not every core (never more than torch's default, one a core)
    torch.set_num_threads(max(1, min(threads, torch.get_num_threads())))
    multilingual = models.is_multilingual(snapshot)
    if not multilingual:
        dec.require_english(snapshot, samples)
    tasks = [dec.choose_task(settings.seed, s, settings.translate_ratio, multilingual) for s in samples]
    languages = [whisper_code(layout.sample_lang(s)) for s in samples]
    plan = plan_batches(languages, tasks, batch_size(settings.batch_size, device))
    entries: list[dict | None] = [None] * len(samples)
    with (
        ThreadPoolExecutor(max(1, threads), thread_name_prefix="features") as readers,
        ThreadPoolExecutor(1, thread_name_prefix="writer") as writer,
    ):
        try:
            made: dict[int, Future] = {}

            def ahead(k: int) -> None:
                for i in plan[k] if k < len(plan) else []:
                    made[i] = readers.submit(features, i)

            for k in range(_FEATURES_AHEAD):
                ahead(k)
            # the tokenizer (a second of JSON) loads beside the model, on the idle writer
            tokenizer_loaded = writer.submit(models.load_tokenizer, snapshot)
            with clock("load the model"):  # our network: transformers' classes cost seconds to import
                model = network.load(snapshot, device)
                generator = dec.generation_model(model, settings.dtype)
                tokenizer = tokenizer_loaded.result()
                tables = dec.embedding_tables(model)
                greedy = decoding.Greedy(generator, settings.max_new_tokens)
            eot = tokenizer.eos_token_id
            prompts = [dec.prompt(tokenizer, lang, task, multilingual) for lang, task in zip(languages, tasks)]
            max_len = model.config.max_target_positions
            pending: collections.deque = collections.deque()
            for k, batch in enumerate(plan):
                ahead(k + _FEATURES_AHEAD)
                with clock("wait for features"):
                    feats = np.concatenate([made.pop(i).result() for i in batch])
                with clock("encode and decode"):
                    feats = torch.from_numpy(feats).transpose(1, 2).contiguous().to(device)
                    with torch.no_grad():
                        encoded = model.get_encoder()(feats).last_hidden_state
                    # encoded once above; generate would run the encoder a second time
                    generated = greedy(encoded, [prompts[i].ids for i in batch])
                rows = []
                for row, i in enumerate(batch):
                    p = prompts[i]
                    text = dec.text_ids(generated[row], eot)
                    if settings.normalize_text:  # the tutorial's EnglishTextNormalizer pass
                        norm = tokenizer.normalize(tokenizer.decode(text)).strip()
                        text = tokenizer.encode(norm, add_special_tokens=False) if norm else text
                    ids = dec.sequence(p.ids, text, eot, max_len)
                    ended = eot in generated[row]  # the prompt holds no end-of-text
                    shown = tokenizer.decode(text)
                    entries[i] = {
                        # kept, and flagged: a decode that ran away is a poor label
                        "loop": metrics.loop_reason(
                            [*text, *([eot] if ended else [])], 0, eot, shown, settings.max_new_tokens
                        ),
                        "sample": samples[i],
                        "task": tasks[i],
                        "task_type": p.task_type,
                        "source_language": languages[i],
                        "use_translation": tasks[i] == "translate",
                        "token_ids": ids,
                        "decoded_tokens": tokenizer.decode(ids, skip_special_tokens=False),
                    }
                    rows.append((out_dirs[i], dec.decoder_input(tables, ids)))
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
    return entries


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
    can leave renamed files that are empty or short (the aggregate steps' header and
    size checks name them; delete them and re-run) or, on some filesystems, zero-filled."""
    states = encoded.float().cpu().numpy()
    for row, (out_dir, decoder_states) in enumerate(rows):
        atomic.write_npy(os.path.join(out_dir, layout.ENCODER_STATES_FILE), states[row : row + 1], durable=False)
        atomic.write_npy(os.path.join(out_dir, layout.DECODER_STATES_FILE), decoder_states, durable=False)


def job_samples(summaries: list[str]) -> list[str]:
    """Sample ids of the calibrate jobs' summaries, in list order."""
    return [e["sample"] for path in summaries for e in atomic.read_json(path)["samples"]]


def write_report(manifests: list[str], decoder_calib: dict, out_path: str, summaries: list[str] = ()) -> dict:
    """Per language: clips used, how many of them clipped (samples at full scale), clips
    skipped at download with their reasons, samples whose label decode ran away (kept:
    the token cap bounds them, and the NPU meets such inputs too; flagged so a user can
    drop the clips from the source); overall: the transcribe/translate mix. Nothing is
    dropped without a line here."""
    languages: dict[str, dict] = {}
    for path in manifests:
        for lang, part in atomic.read_json(path)["languages"].items():
            entry = languages.setdefault(lang, {"used": 0, "clipped": 0, "skipped": [], "runaway_decodes": []})
            entry["used"] += len(part["samples"])
            entry["clipped"] += part.get("clipped_clips", 0)
            entry["skipped"] += part["skipped"]
    for path in summaries:
        for e in atomic.read_json(path)["samples"]:
            if e.get("loop"):
                flagged = {"sample": e["sample"], "task": e["task_type"], "reason": e["loop"]}
                languages[layout.sample_lang(e["sample"])]["runaway_decodes"].append(flagged)
    tasks = Counter(m["task_type"] for m in decoder_calib["metadata"])
    report = {
        "samples": len(decoder_calib["metadata"]),
        "task_types": dict(sorted(tasks.items())),
        "languages": languages,
    }
    atomic.write_json(out_path, report)
    return report
