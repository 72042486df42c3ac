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
from .languages import whisper_code


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
    sentence_id: object = None  # FLEURS `id`: the same sentence in every language


def clips(manifests: list[str]) -> list[Clip]:
    """Evaluation clips in job order, with their reference text."""
    out = []
    for path in manifests:
        for s in data.manifest_samples(atomic.read_json(path)):
            sample = s["file"].removesuffix(".wav")
            out.append(Clip(sample, s["language"], s["wav"], s["raw_transcription"], s.get("fleurs_id")))
    return out


# --- English references of the translations ----------------------------------------------
ENGLISH = "en_us"
HUMAN = "human: FLEURS en_us raw_transcription of the same sentence id"
LABEL_MODEL = "the label model's English translation (labels.model): agreement, not quality"


def english_references(source: data.Source, manifests: list[str]) -> dict:
    """Per language, which English reference its translations are scored against, and
    per clip the human one where there is one.

    FLEURS is n-way parallel: a sentence `id` is the same sentence in every language, so
    en_us's text of that id (in the same split: FLEURS keeps a sentence in one split
    across languages) is a human translation of what the clip says. A language gets the
    human reference only where every one of its clips has one (mixed references would
    make one BLEU of two measures); otherwise the label model's, with the reason."""
    by_lang: dict[str, list[Clip]] = {}
    for clip in clips(manifests):
        if whisper_code(clip.lang) != "en":
            by_lang.setdefault(clip.lang, []).append(clip)
    if not by_lang:
        return {"languages": {}, "references": {}}
    texts, why_not = _english_texts(source)
    languages, references = {}, {}
    for lang, lang_clips in by_lang.items():
        found = {c.sample: texts.get(str(c.sentence_id), "").strip() for c in lang_clips} if texts else {}
        lacking = [c.sample for c in lang_clips if not found.get(c.sample)]
        if texts and not lacking:
            languages[lang] = {"kind": "human", "reference": HUMAN}
            references.update(found)
            continue
        reason = why_not or (
            f"{len(lacking)} of {len(lang_clips)} clips' sentence ids have no en_us text in split "
            f"{source.split!r} ({', '.join(lacking[:5])})"
        )
        languages[lang] = {"kind": "label model", "reference": LABEL_MODEL, "why": reason}
    return {"languages": languages, "references": references}


def _english_texts(source: data.Source) -> tuple[dict[str, str], str | None]:
    """en_us sentence id -> raw transcription in the source's split, or ({}, why none)."""
    if source.is_audio_folder():
        return {}, "an audio folder's rows share no sentence ids across languages"
    try:
        return {str(k): v for k, v in data.sentence_texts(source, ENGLISH).items()}, None
    except ValueError as e:
        return {}, f"the source has no en_us text to take references from ({e})"


def write_english_references(source: data.Source, manifests: list[str], out_json: str) -> dict:
    result = english_references(source, manifests)
    atomic.write_json(out_json, result)
    return result
