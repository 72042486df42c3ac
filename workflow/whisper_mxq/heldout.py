"""Held-out evaluation clips: never in the calibration set.

They are read from their own split (FLEURS `test` by default), and any clip whose
sentence was calibrated on is passed over (FLEURS reads each sentence several times, so
the text, not the clip, must not repeat), which lets even the calibration split serve
(the offline demo does that). Evaluation jobs follow the same plan as the calibration's
(whisper_mxq/jobs.py), over `quality.eval.samples_per_language` clips a language.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import atomic, data


def calibration_sentences(downloads: list[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """Every sentence (raw transcription) calibrated on, per language, from the
    calibration download jobs' (stamp, manifest) pairs."""
    found: dict[str, set[str]] = {}
    for stamp, manifest_path in downloads:
        manifest = data.read_manifest(stamp, manifest_path)
        for lang, part in manifest["languages"].items():
            found.setdefault(lang, set()).update((s["raw_transcription"] or "").strip() for s in part["samples"])
    return {lang: frozenset(s for s in sentences if s) for lang, sentences in found.items()}


def download_eval_job(
    source: data.Source,
    parts: list[data.Part],
    wav_paths: list[str],
    manifest_path: str,
    stamp_path: str,
    calibration_downloads: list[tuple[str, str]],
    max_skipped_fraction: float,
    threads: int = 1,
) -> dict:
    return data.download_job(
        source,
        parts,
        wav_paths,
        manifest_path,
        stamp_path,
        max_skipped_fraction,
        exclude=calibration_sentences(calibration_downloads),
        threads=threads,
    )


@dataclass(frozen=True)
class Clip:
    sample: str
    lang: str
    wav: str
    reference: str | None  # FLEURS raw_transcription; None or "" when the source has none


def clips(manifests: list[str]) -> list[Clip]:
    """Evaluation clips in job order, with their reference text."""
    out = []
    for path in manifests:
        for s in data.manifest_samples(atomic.read_json(path)):
            sample = s["file"].removesuffix(".wav")
            out.append(Clip(sample, s["language"], s["wav"], s["raw_transcription"]))
    return out
