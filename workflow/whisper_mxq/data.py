"""Step 1a: FLEURS clips of one download job -> 16 kHz mono WAVs, a manifest, a stamp.

FLEURS is read from the Hub's Parquet export (`refs/convert/parquet`), so no loading
script and no remote code run; a local folder in the same layout stands in for the
Hub. Audio stays undecoded in `datasets` (no FFmpeg) and soundfile decodes it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Iterable, Iterator

from . import atomic, audio
from .languages import whisper_code

PARQUET_REVISION = "refs/convert/parquet"
# Download always fills a language with the clips asked for, skipping bad ones, so a
# "minimum usable" count is met or the language fails anyway. What betrays a broken
# source (wrong shards, a codec soundfile lacks) is the share of clips read that had to
# be skipped: above this (config `data.max_skipped_fraction`) the language fails.
MAX_SKIPPED_FRACTION = 0.5
# FLEURS columns the workflow reads; a shard without one of them is refused.
REQUIRED_COLUMNS = ("id", "audio", "transcription", "raw_transcription")


@dataclass(frozen=True)
class Source:
    """Where FLEURS comes from: a Hub dataset id or a local folder of Parquet shards."""

    location: str
    split: str = "validation"

    def is_local(self) -> bool:
        return os.path.isdir(self.location)

    def data_files(self, lang: str) -> str:
        # The export stores `{config}/{split}/NNNN.parquet` (or `partial-{split}` when
        # the Hub converted only part of a large split); the glob takes either.
        shards = f"{lang}/*{self.split}/*.parquet"
        if self.is_local():
            return os.path.join(self.location, shards)
        return f"hf://datasets/{self.location}@{PARQUET_REVISION.replace('/', '%2F')}/{shards}"


def stream_rows(source: Source, lang: str) -> Iterator[dict]:
    """FLEURS rows of one language in file order, audio as raw bytes."""
    import datasets

    files = source.data_files(lang)
    try:
        ds = datasets.load_dataset(
            "parquet", data_files={source.split: files}, split=source.split, streaming=True
        )
    except FileNotFoundError as e:
        raise ValueError(
            f"language {lang!r}: no FLEURS {source.split!r} shards at {files} ({e})"
        ) from e
    except ValueError as e:  # a local glob matching nothing: "all the data_files are invalid"
        raise ValueError(
            f"language {lang!r}: cannot read FLEURS {source.split!r} shards at {files} ({e})"
        ) from e
    missing = [c for c in REQUIRED_COLUMNS if c not in (ds.column_names or REQUIRED_COLUMNS)]
    if missing:
        raise ValueError(f"language {lang!r}: FLEURS shards {files} lack columns {missing}")
    if isinstance(ds.features.get("audio"), datasets.Audio):
        ds = ds.cast_column("audio", datasets.Audio(decode=False))
    yield from ds


def audio_bytes(row: dict, name: str) -> bytes:
    value = row.get("audio")
    data = value.get("bytes") if isinstance(value, dict) else None
    if not data:
        raise audio.BadAudio(f"{name}: no audio bytes in the row")
    return data


@dataclass(frozen=True)
class Part:
    """`count` usable clips of one language, read from source row `first_row` on."""

    lang: str
    count: int
    first_row: int = 0


def take_clips(rows: Iterable[dict], part: Part, wav_paths: list[str], where: str,
               max_skipped_fraction: float, exclude: frozenset[str] = frozenset()) -> dict:
    """Write the first `part.count` usable clips of `rows` (the language's rows from
    row 0; those before `part.first_row` are passed over) to `wav_paths`.

    Bad clips (undecodable, empty, silent, over 30 s, NaN) are skipped with their reason
    and the next clip takes their place, so the language still yields exactly the
    samples the DAG expects, or fails naming itself. Rows whose sentence is in `exclude`
    (held-out evaluation: the calibration sentences) are passed over unrecorded.
    """
    lang, kept, skipped = part.lang, [], []
    next_row = part.first_row
    for row_index, row in enumerate(rows):
        if row_index < part.first_row:
            continue
        if len(kept) == part.count:
            break
        next_row = row_index + 1
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"language {lang!r}: FLEURS row lacks columns {missing}")
        if exclude and (row["raw_transcription"] or "").strip() in exclude:
            continue
        name = f"{lang} FLEURS id {row['id']} ({row.get('path', '')})"
        try:
            samples = audio.prepare(audio_bytes(row, name), name)
        except audio.BadAudio as e:
            skipped.append({"fleurs_id": row["id"], "path": row.get("path"), "row": row_index, "reason": str(e)})
            continue
        wav = wav_paths[len(kept)]
        clip = audio.wav_bytes(samples)
        # No fsync per clip: the rename keeps a killed job from leaving a partial file,
        # and the manifest, written last with fsync, is what the job's outputs hang on.
        atomic.write_bytes(wav, clip, durable=False)
        kept.append({
            "file": os.path.basename(wav),
            "wav": wav,
            "fleurs_id": row["id"],
            "fleurs_path": row.get("path"),
            "row": row_index,
            "transcription": row["transcription"],
            "raw_transcription": row["raw_transcription"],
            "duration_s": round(samples.shape[0] / audio.SAMPLE_RATE, 3),
            "sha256": hashlib.sha256(clip).hexdigest(),
        })
    if len(kept) < part.count:
        reasons = "; ".join(s["reason"] for s in skipped[:5])
        raise ValueError(
            f"language {lang!r}: only {len(kept)} usable clips of the {part.count} asked for "
            f"from {where} (source rows from {part.first_row}; {len(skipped)} skipped"
            f"{': ' + reasons if reasons else ''})"
        )
    check_skipped(lang, len(kept), skipped, max_skipped_fraction)
    return {"whisper_language": whisper_code(lang), "first_row": part.first_row,
            "next_row": next_row, "samples": kept, "skipped": skipped}


def check_skipped(lang: str, n_kept: int, skipped: list[dict], max_fraction: float) -> None:
    """Fail the language when more than `max_fraction` of the clips read were skipped."""
    read = n_kept + len(skipped)
    if read and len(skipped) / read > max_fraction:
        reasons = "; ".join(s["reason"] for s in skipped[:5])
        raise ValueError(
            f"language {lang!r}: {len(skipped)} of {read} clips read were skipped, over "
            f"config key 'data.max_skipped_fraction' = {max_fraction} ({reasons})"
        )


def download_job(
    source: Source,
    parts: list[Part],
    wav_paths: list[str],
    manifest_path: str,
    stamp_path: str,
    max_skipped_fraction: float = MAX_SKIPPED_FRACTION,
    exclude: dict[str, frozenset[str]] | None = None,
) -> dict:
    """One download job: each part's clips, in order, then its manifest and its stamp.

    The stamp holds the manifest's checksum and where each language's rows stop (the
    next job of that language starts there); it is written last, so it exists only
    beside a complete manifest and complete clips.
    """
    for part in parts:
        whisper_code(part.lang)  # an unknown language fails before any network traffic
    if sum(p.count for p in parts) != len(wav_paths):
        raise ValueError(f"{manifest_path}: {len(wav_paths)} clip paths for {sum(p.count for p in parts)} clips")
    where = f"{source.location} ({source.split})"
    languages, offset = {}, 0
    for part in parts:
        paths = wav_paths[offset : offset + part.count]
        offset += part.count
        rows = stream_rows(source, part.lang)
        languages[part.lang] = take_clips(rows, part, paths, where, max_skipped_fraction,
                                          (exclude or {}).get(part.lang, frozenset()))
    manifest = {"source": where, "languages": languages}
    atomic.write_json(manifest_path, manifest)
    atomic.write_json(stamp_path, {
        "manifest_sha256": file_sha256(manifest_path),
        "next_row": {lang: m["next_row"] for lang, m in languages.items()},
    })
    return manifest


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_manifest(stamp_path: str, manifest_path: str) -> dict:
    """A download job's manifest, checked against the stamp that stands for it (the jobs
    that read clips declare only the stamp as their input)."""
    stamp = atomic.read_json(stamp_path)
    if file_sha256(manifest_path) != stamp["manifest_sha256"]:
        raise ValueError(f"{manifest_path} changed after its download ({stamp_path} has another "
                         "checksum): delete both and run the workflow again to download afresh")
    return atomic.read_json(manifest_path)


def next_row(stamp_path: str, lang: str) -> int:
    """Where the job of `stamp_path` stopped reading `lang`'s source rows."""
    return int(atomic.read_json(stamp_path)["next_row"][lang])


def manifest_samples(manifest: dict) -> list[dict]:
    """Every kept clip of a job's manifest, with its language, in list order."""
    return [{**s, "language": lang} for lang, m in manifest["languages"].items() for s in m["samples"]]


def clip_checker(*manifests: dict):
    """A function that reads a clip of these manifests and refuses it when its bytes are
    no longer the ones downloaded (replaced by hand, truncated by a full disk)."""
    expected = {os.path.normpath(s["wav"]): s["sha256"] for m in manifests for s in manifest_samples(m)}

    def load(wav_path: str):
        name = os.path.normpath(wav_path)
        if name not in expected:
            raise ValueError(f"{wav_path}: not a clip of this job's manifest")
        with open(wav_path, "rb") as f:
            clip = f.read()
        if hashlib.sha256(clip).hexdigest() != expected[name]:
            raise ValueError(f"{wav_path}: not the clip downloaded (its checksum differs from "
                             "the manifest's); delete the job's manifest and run again to download afresh")
        return audio.prepare(clip, wav_path)

    return load
