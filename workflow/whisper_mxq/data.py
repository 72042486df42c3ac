"""Step 1a: FLEURS clips for one language -> 16 kHz mono WAVs plus a manifest.

FLEURS is read from the Hub's Parquet export (`refs/convert/parquet`), so no loading
script and no remote code run; a local folder in the same layout stands in for the
Hub. Audio stays undecoded in `datasets` (no FFmpeg) and soundfile decodes it.
"""

from __future__ import annotations

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


def download_language(
    rows: Iterable[dict],
    lang: str,
    wav_paths: list[str],
    manifest_path: str,
    source: str = "",
    max_skipped_fraction: float = MAX_SKIPPED_FRACTION,
) -> dict:
    """Write the first len(wav_paths) usable clips of `rows`; record every skipped one.

    Bad clips (undecodable, empty, silent, over 30 s, NaN) are skipped with their reason
    in the manifest and the next clip takes their place, so each language still yields
    exactly the number of samples the DAG expects, or fails naming the language.
    """
    wanted = len(wav_paths)
    kept: list[dict] = []
    skipped: list[dict] = []
    for row in rows:
        if len(kept) == wanted:
            break
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"language {lang!r}: FLEURS row lacks columns {missing}")
        name = f"{lang} FLEURS id {row['id']} ({row.get('path', '')})"
        try:
            samples = audio.prepare(audio_bytes(row, name), name)
        except audio.BadAudio as e:
            skipped.append({"fleurs_id": row["id"], "path": row.get("path"), "reason": str(e)})
            continue
        wav = wav_paths[len(kept)]
        atomic.write_bytes(wav, audio.wav_bytes(samples))
        kept.append(
            {
                "file": os.path.basename(wav),
                "fleurs_id": row["id"],
                "fleurs_path": row.get("path"),
                "transcription": row["transcription"],
                "raw_transcription": row["raw_transcription"],
                "duration_s": round(samples.shape[0] / audio.SAMPLE_RATE, 3),
            }
        )
    if len(kept) < wanted:
        reasons = "; ".join(s["reason"] for s in skipped[:5])
        raise ValueError(
            f"language {lang!r}: only {len(kept)} usable clips of the {wanted} asked for "
            f"from {source or 'FLEURS'} ({len(skipped)} skipped{': ' + reasons if reasons else ''})"
        )
    check_skipped(lang, len(kept), skipped, max_skipped_fraction)
    manifest = {
        "language": lang,
        "whisper_language": whisper_code(lang),
        "source": source,
        "samples": kept,
        "skipped": skipped,
    }
    atomic.write_json(manifest_path, manifest)
    return manifest


def check_skipped(lang: str, n_kept: int, skipped: list[dict], max_fraction: float) -> None:
    """Fail the language when more than `max_fraction` of the clips read were skipped."""
    read = n_kept + len(skipped)
    if read and len(skipped) / read > max_fraction:
        reasons = "; ".join(s["reason"] for s in skipped[:5])
        raise ValueError(
            f"language {lang!r}: {len(skipped)} of {read} clips read were skipped, over "
            f"config key 'data.max_skipped_fraction' = {max_fraction} ({reasons})"
        )


def download(
    source: Source,
    lang: str,
    wav_paths: list[str],
    manifest_path: str,
    max_skipped_fraction: float = MAX_SKIPPED_FRACTION,
) -> dict:
    whisper_code(lang)  # an unknown language fails before any network traffic
    where = f"{source.location} ({source.split})"
    return download_language(
        stream_rows(source, lang), lang, wav_paths, manifest_path, where, max_skipped_fraction
    )
