"""Step 1a: source clips of one download job -> 16 kHz mono WAVs, a manifest, a stamp.

Two kinds of source (`fleurs.source`), told apart by what the location holds:

- FLEURS' Parquet layout `{lang}/{split}/*.parquet` (columns id, audio{bytes, path},
  transcription, raw_transcription; others are ignored): a Hub dataset id, read from
  the Hub's Parquet export (`refs/convert/parquet`: no loading script, no remote
  code), or a local folder in the same layout.
- Your own audio: a local folder holding `{split}.tsv` (columns file, language,
  transcription; files relative to the folder, in any format soundfile reads).

Either way `stream_rows` yields one language's rows in file order with the same keys,
audio as raw bytes that soundfile decodes (no FFmpeg): downloads, held-out evaluation
and the job chaining never need to know which kind it was.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import atomic, audio
from .languages import FLEURS_TO_WHISPER, whisper_code

PARQUET_REVISION = "refs/convert/parquet"
# FLEURS columns the workflow reads; a shard without one of them is refused.
REQUIRED_COLUMNS = ("id", "audio", "transcription", "raw_transcription")
# Rows are read a few at a time: memory holds a few clips, never a shard.
PARQUET_BATCH_ROWS = 16
# A row group whose audio would decompress to more than this is refused unread
# (FLEURS' export: ~100 clips of ~1 MB a row group).
MAX_ROW_GROUP_AUDIO_BYTES = 4 * 1024**3
# An audio folder's list: `{split}.tsv` with these columns (others are ignored).
TSV_COLUMNS = ("file", "language", "transcription")
MAX_TSV_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Source:
    """Where clips come from: a Hub dataset id, a local folder of FLEURS Parquet shards,
    or a local folder of audio files listed in `{split}.tsv`."""

    location: str
    split: str = "validation"

    def is_local(self) -> bool:
        return os.path.isdir(self.location)

    def tsv(self) -> str:
        return os.path.join(self.location, f"{self.split}.tsv")

    def is_audio_folder(self) -> bool:
        return self.is_local() and os.path.lexists(self.tsv())

    def data_files(self, lang: str) -> str:
        # The export stores `{config}/{split}/NNNN.parquet` (or `partial-{split}` when
        # the Hub converted only part of a large split); the glob takes either.
        shards = f"{lang}/*{self.split}/*.parquet"
        if self.is_local():
            return os.path.join(self.location, shards)
        return f"hf://datasets/{self.location}@{PARQUET_REVISION.replace('/', '%2F')}/{shards}"


def stream_rows(source: Source, lang: str, start: int = 0) -> Iterator[dict]:
    """One language's rows in file order from row `start` on, audio as raw bytes, with
    FLEURS' keys (id, path, audio{bytes, path}, transcription, raw_transcription) from
    either kind. Rows before `start` are passed over unread (a later download job of the
    language starts where the one before stopped). A row that cannot serve carries
    `problem` (why), which the download records as a skip."""
    if source.is_audio_folder():
        yield from audio_folder_rows(source, lang, start)
    else:
        yield from parquet_rows(source, lang, start)


def _not_regular(path: str) -> str | None:
    """Why `path` is no file to open (a FIFO would block the reader, a device never
    ends), or None for a regular file."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return f"{path}: cannot read ({e.strerror or e})"
    return None if stat.S_ISREG(mode) else f"{path}: {audio.file_kind(mode)}, not a regular file"


# --- FLEURS Parquet shards ------------------------------------------------------------
def shard_paths(source: Source, lang: str) -> tuple[object, list[str]]:
    """(filesystem, shard paths in name order) of one language: fsspec globs the local
    folder and the Hub's export (`hf://`) alike.

    Shards are read through fsspec's Python file objects with use_threads=False: pyarrow's
    reader threads on such a file can outlive the interpreter's teardown and abort the
    process at exit (std::terminate) after its work is done, failing the job."""
    import fsspec

    files = source.data_files(lang)
    try:
        fs, pattern = fsspec.core.url_to_fs(files)
        paths = sorted(fs.glob(pattern))
    except (OSError, ValueError) as e:
        raise ValueError(f"language {lang!r}: cannot read FLEURS {source.split!r} shards at {files} ({e})") from e
    if not paths:
        raise ValueError(f"language {lang!r}: cannot read FLEURS {source.split!r} shards at {files} (no file matches)")
    for path in paths if source.is_local() else ():
        if reason := _not_regular(path):
            raise ValueError(f"language {lang!r}: {reason}; only regular files are read")
    return fs, paths


class ShardError(ValueError):
    """A shard that cannot be read; the message names it."""


def parquet_rows(source: Source, lang: str, start: int = 0) -> Iterator[dict]:
    """Rows of every shard in turn, from row `start` (counted across shards) on. A shard
    with zero rows (its footer says so) is read as empty: no row group of it is touched
    (pyarrow refuses a batch of 0 rows); shards and row groups wholly before `start` are
    skipped from their footers."""
    import pyarrow.parquet as pq

    fs, paths = shard_paths(source, lang)
    skip = start
    for path in paths:
        try:
            with fs.open(path, "rb") as f:
                shard = pq.ParquetFile(f)
                if shard.metadata.num_rows == 0:
                    continue  # whatever its schema: it has nothing to give
                if skip >= shard.metadata.num_rows:
                    skip -= shard.metadata.num_rows
                    continue
                yield from _shard_rows(shard, _columns(shard, lang, path), path, skip)
                skip = 0
        except ShardError:
            raise
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise ShardError(f"language {lang!r}: cannot read FLEURS shard {path} ({e})") from e


def _columns(shard, lang: str, path: str) -> list[str]:
    names = shard.schema_arrow.names
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ShardError(f"language {lang!r}: FLEURS shards {path} lack columns {missing}")
    return [*REQUIRED_COLUMNS, *(["path"] if "path" in names else [])]


def _shard_rows(shard, columns: list[str], path: str, skip: int = 0) -> Iterator[dict]:
    for group in range(shard.metadata.num_row_groups):
        meta = shard.metadata.row_group(group)
        if meta.num_rows == 0:
            continue
        if skip >= meta.num_rows:
            skip -= meta.num_rows
            continue
        size = sum(
            meta.column(c).total_uncompressed_size
            for c in range(meta.num_columns)
            if meta.column(c).path_in_schema.split(".")[0] == "audio"
        )
        if size > MAX_ROW_GROUP_AUDIO_BYTES:
            raise ShardError(
                f"{path}: row group {group} holds {size} bytes of audio "
                f"(over {MAX_ROW_GROUP_AUDIO_BYTES}); it is not read"
            )
        batches = shard.iter_batches(
            batch_size=PARQUET_BATCH_ROWS, row_groups=[group], columns=columns, use_threads=False
        )
        for batch in batches:
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            yield from batch.slice(skip).to_pylist()
            skip = 0


def sentence_texts(source: Source, lang: str) -> dict:
    """FLEURS sentence id -> raw transcription of one language's shards: the two text
    columns only (Parquet reads no audio for them, on the Hub as on disk)."""
    import pyarrow.parquet as pq

    fs, paths = shard_paths(source, lang)
    out: dict = {}
    for path in paths:
        try:
            with fs.open(path, "rb") as f:
                table = pq.read_table(f, columns=["id", "raw_transcription"], use_threads=False)
        except (OSError, ValueError) as e:
            raise ShardError(f"language {lang!r}: cannot read FLEURS shard {path} ({e})") from e
        for sid, text in zip(table.column("id").to_pylist(), table.column("raw_transcription").to_pylist()):
            if text and sid not in out:  # several speakers read one sentence: one text
                out[sid] = text
    return out


# --- your own audio: a folder and a TSV -----------------------------------------------
@dataclass(frozen=True)
class TsvRow:
    line: int  # in the TSV, 1 = the header
    file: str  # as written, relative to the folder
    language: str
    transcription: str
    problem: str | None  # why the row cannot serve, or None


# Parsed lists by path, folder and content: parse time checks the list and plans its
# languages' stamps from it; reading it is cheap, parsing 17 x 1000 rows takes ~0.5 s.
_PARSED: dict[tuple, tuple[TsvRow, ...]] = {}


def read_tsv(source: Source) -> list[TsvRow]:
    """Every row of `{split}.tsv`, checked. Errors (the whole list is wrong): no such
    file, not UTF-8, a missing column, a row of another width, a language the workflow
    does not know, a file path leaving the folder. Per-row problems (recorded as skips
    by the download): an empty transcription, a file listed twice. A list read before
    with the same content is not parsed again."""
    tsv = source.tsv()
    text = _read_tsv_text(tsv)
    root = os.path.realpath(source.location)
    key = (os.path.abspath(tsv), root, hashlib.sha256(text.encode()).digest())
    if key not in _PARSED:
        if len(_PARSED) >= 4:  # a run reads one or two lists
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = tuple(_parse_tsv(source, root, text))
    return list(_PARSED[key])


def _parse_tsv(source: Source, root: str, text: str) -> list[TsvRow]:
    tsv = source.tsv()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{tsv}: empty; expected a header row with columns {list(TSV_COLUMNS)}")
    header = [h.strip() for h in header]
    missing = [c for c in TSV_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{tsv}: no column {missing} in the header row {header} "
            f"(config key 'fleurs.source' names an audio folder: columns {list(TSV_COLUMNS)})"
        )
    index = {c: header.index(c) for c in TSV_COLUMNS}
    rows, seen = [], {}
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue  # a blank line holds no row
        if len(fields) != len(header):
            raise ValueError(f"{tsv} line {line}: {len(fields)} tab-separated fields, the header has {len(header)}")
        file, lang, text_ = (fields[index[c]].strip() for c in TSV_COLUMNS)
        _check_tsv_language(tsv, line, lang)
        _inside_folder(root, source.location, tsv, line, file)
        problem = None
        if not text_:
            problem = f"{tsv} line {line}: empty transcription"
        elif os.path.normpath(file) in seen:
            problem = f"{tsv} line {line}: {file} is listed again (first on line {seen[os.path.normpath(file)]})"
        seen.setdefault(os.path.normpath(file), line)
        rows.append(TsvRow(line, file, lang, text_, problem))
    return rows


def _read_tsv_text(tsv: str) -> str:
    try:
        data = audio.read_regular_file(tsv, MAX_TSV_BYTES)
    except audio.BadAudio as e:  # the same rule for any file the workflow reads
        raise ValueError(str(e)) from e
    try:
        return data.decode("utf-8-sig")  # a byte-order mark from spreadsheet exports is fine
    except UnicodeDecodeError as e:
        raise ValueError(f"{tsv}: not UTF-8 text ({e})") from e


def _check_tsv_language(tsv: str, line: int, lang: str) -> None:
    if lang not in FLEURS_TO_WHISPER:
        raise ValueError(
            f"{tsv} line {line}: language {lang!r} (column 'language') is not a FLEURS config "
            f"code the workflow maps to Whisper (known: {', '.join(FLEURS_TO_WHISPER)})"
        )


def _inside_folder(root: str, folder: str, tsv: str, line: int, file: str) -> None:
    """A listed file must stay inside the folder (`root`, its real path), also through links."""
    if not file:
        raise ValueError(f"{tsv} line {line}: empty 'file' column")
    target = os.path.realpath(os.path.join(folder, file))
    if os.path.isabs(file) or os.path.commonpath([root, target]) != root:
        raise ValueError(
            f"{tsv} line {line}: file {file!r} leaves the folder {folder} "
            "(files are listed relative to it and must stay inside)"
        )


def audio_folder_rows(source: Source, lang: str, start: int = 0) -> Iterator[dict]:
    """One language's TSV rows in file order, from row `start` on, as FLEURS-keyed rows;
    each file is read (regular files of bounded size only) when its row is reached."""
    rows = [r for r in read_tsv(source) if r.language == lang]
    if not rows:
        raise ValueError(f"language {lang!r}: no rows in {source.tsv()} (column 'language')")
    for r in rows[start:]:
        problem, data = r.problem, None
        if problem is None:
            try:
                data = audio.read_regular_file(os.path.join(source.location, r.file))
            except audio.BadAudio as e:
                problem = f"{source.tsv()} line {r.line}: {e}"
        yield {
            "id": r.line,
            "path": r.file,
            "audio": {"bytes": data, "path": r.file},
            "transcription": r.transcription,
            "raw_transcription": r.transcription,
            "problem": problem,
            "name": f"{lang} {source.tsv()} line {r.line} ({r.file})",
        }


def check_source(location: str, split: str, languages: list[str]) -> None:
    """Parse-time check of a local source (cheap: a TSV, directory listings). Errors
    name `fleurs.source` and what is wrong; a Hub id is left to the download jobs."""
    from .models import looks_like_path

    source = Source(location, split)
    if not source.is_local():
        if os.path.lexists(location):
            raise ValueError(f"config key 'fleurs.source': {location!r} is a file, not a folder")
        if looks_like_path(location):
            raise ValueError(
                f"config key 'fleurs.source': {location!r} does not exist (nothing at {os.path.abspath(location)})"
            )
        return
    if source.is_audio_folder():
        try:
            rows = read_tsv(source)
        except ValueError as e:
            raise ValueError(f"config key 'fleurs.source': {e}") from e
        found = {r.language for r in rows}
        lacking = [lang for lang in languages if lang not in found]
        if lacking:
            raise ValueError(
                f"config key 'fleurs.source': {source.tsv()} has no rows for languages {lacking} "
                "(config key 'languages')"
            )
        # Folders of audio per language are fine; Parquet shards beside the TSV are not.
        shards = [lang for lang in FLEURS_TO_WHISPER if glob.glob(source.data_files(lang))]
        if shards:
            raise ValueError(
                f"config key 'fleurs.source': {location} holds both {source.tsv()} and FLEURS "
                f"shard folders {shards}: keep one kind of source per folder"
            )
        return
    lacking = [lang for lang in languages if not glob.glob(source.data_files(lang))]
    if lacking:
        raise ValueError(
            f"config key 'fleurs.source': {location} holds neither {split}.tsv (an audio folder) nor "
            f"FLEURS shards {{lang}}/{split}/*.parquet for languages {lacking}"
        )


# --- what a language's downloads read: the DAG's view of a local source ---------------
def source_listing(source: Source, languages: list[str]) -> dict[str, dict]:
    """Per language of a local source, what its downloads read: `files`, the paths
    that are there (its Parquet shards, or the audio files its rows of the list name),
    and for an audio folder `rows`, a digest of its rows of `{split}.tsv` (line, file,
    transcription). A job is stale when one of these changes, and only then: the list
    itself is shared by every language, so its rows, not its time, stand for it.
    Parse time: globs and one read of the list, no audio opened."""
    if source.is_audio_folder():
        by_lang: dict[str, list[TsvRow]] = {}
        for row in read_tsv(source):
            by_lang.setdefault(row.language, []).append(row)
        out = {}
        for lang in languages:
            rows = by_lang.get(lang, [])
            listed = [os.path.normpath(os.path.join(source.location, r.file)) for r in rows]
            digest = hashlib.sha256(
                json.dumps([[r.line, r.file, r.transcription] for r in rows], ensure_ascii=False).encode()
            ).hexdigest()
            out[lang] = {"files": sorted({f for f in listed if os.path.lexists(f)}), "rows": digest}
        return out
    return {lang: {"files": sorted(glob.glob(source.data_files(lang))), "rows": None} for lang in languages}


def write_source_stamp(source: Source, lang: str, out_path: str) -> dict:
    """The stamp a language's download jobs hang on: its files' sizes and checksums and
    its list rows. Its bytes change only when what the downloads read does (Snakemake
    checksums small inputs, so a file touched but unchanged reruns nothing beyond this)."""
    listing = source_listing(source, [lang])[lang]
    files = []
    for path in listing["files"]:
        entry = {"path": os.path.relpath(path, source.location)}
        reason = _not_regular(path)  # a FIFO would block the checksum's read
        if reason:
            entry["problem"] = reason
        else:
            entry.update(bytes=os.path.getsize(path), sha256=file_sha256(path))
        files.append(entry)
    stamp = {
        "source": source.location,
        "split": source.split,
        "language": lang,
        "rows": listing["rows"],
        "files": files,
    }
    atomic.write_json(out_path, stamp)
    return stamp


# --- one download job -----------------------------------------------------------------
def audio_bytes(row: dict, name: str) -> bytes:
    value = row.get("audio")
    data = value.get("bytes") if isinstance(value, dict) else None
    if not data:
        raise audio.BadAudio(f"{name}: no audio bytes in the row")
    return data


def row_name(lang: str, row: dict) -> str:
    """How skips and errors name a row: its place in the source."""
    return row.get("name") or f"{lang} FLEURS id {row['id']} ({row.get('path', '')})"


@dataclass(frozen=True)
class Part:
    """`count` usable clips of one language, read from source row `first_row` on."""

    lang: str
    count: int
    first_row: int = 0


def take_clips(
    rows: Iterable[dict],
    part: Part,
    wav_paths: list[str],
    where: str,
    max_skipped_fraction: float,
    exclude: frozenset[str] = frozenset(),
) -> dict:
    """Write the first `part.count` usable clips of `rows` (the language's rows from
    row `part.first_row` on, as stream_rows gives them) to `wav_paths`.

    Bad clips (unreadable, undecodable, empty, too short, silent, over 30 s, NaN, an
    absurd header) are skipped with their reason and the next clip takes their place,
    so the language still yields exactly the samples the DAG expects, or fails naming
    itself. Rows whose sentence is in `exclude` (held-out evaluation: the calibration
    sentences) are passed over unrecorded. Clips with samples at full scale are kept;
    each records how many (`clipped_samples`), and the language how many such clips.
    """
    lang, kept, skipped = part.lang, [], []
    next_row = part.first_row
    for row_index, row in enumerate(rows, start=part.first_row):
        if len(kept) == part.count:
            break
        next_row = row_index + 1
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"language {lang!r}: FLEURS row lacks columns {missing}")
        if exclude and (row["raw_transcription"] or "").strip() in exclude:
            continue
        name = row_name(lang, row)
        try:
            if row.get("problem"):
                raise audio.BadAudio(row["problem"])
            samples, clipped = audio.prepare_clip(audio_bytes(row, name), name)
        except audio.BadAudio as e:
            skipped.append({"fleurs_id": row["id"], "path": row.get("path"), "row": row_index, "reason": str(e)})
            continue
        wav = wav_paths[len(kept)]
        clip = audio.wav_bytes(samples)
        # No fsync per clip: the rename keeps a killed job from leaving a partial file,
        # and the manifest, written last with fsync, is what the job's outputs hang on.
        atomic.write_bytes(wav, clip, durable=False)
        kept.append(
            {
                "file": os.path.basename(wav),
                "wav": wav,
                "fleurs_id": row["id"],
                "fleurs_path": row.get("path"),
                "row": row_index,
                "transcription": row["transcription"],
                "raw_transcription": row["raw_transcription"],
                "duration_s": round(samples.shape[0] / audio.SAMPLE_RATE, 3),
                "clipped_samples": clipped,
                "sha256": hashlib.sha256(clip).hexdigest(),
            }
        )
    if len(kept) < part.count:
        reasons = "; ".join(s["reason"] for s in skipped[:5])
        raise ValueError(
            f"language {lang!r}: only {len(kept)} usable clips of the {part.count} asked for "
            f"from {where} (source rows from {part.first_row}; {len(skipped)} skipped"
            f"{': ' + reasons if reasons else ''})"
        )
    check_skipped(lang, len(kept), skipped, max_skipped_fraction)
    return {
        "whisper_language": whisper_code(lang),
        "first_row": part.first_row,
        "next_row": next_row,
        "samples": kept,
        "skipped": skipped,
        "clipped_clips": sum(1 for s in kept if s["clipped_samples"]),
    }


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
    max_skipped_fraction: float,
    exclude: dict[str, frozenset[str]] | None = None,
    threads: int = 1,
) -> dict:
    """One download job: each part's clips, then its manifest and its stamp.

    Parts (languages) are read on `threads` threads at once: each is its own source, and
    a part's clips come in row order, whatever the others do. The stamp holds the
    manifest's checksum and where each language's rows stop (the next job of that
    language starts there); it is written last, so it exists only beside a complete
    manifest and complete clips.
    """
    for part in parts:
        whisper_code(part.lang)  # an unknown language fails before any network traffic
    if sum(p.count for p in parts) != len(wav_paths):
        raise ValueError(f"{manifest_path}: {len(wav_paths)} clip paths for {sum(p.count for p in parts)} clips")
    where = f"{source.location} ({source.split})"
    starts = [sum(p.count for p in parts[:k]) for k in range(len(parts))]

    def take(k: int) -> dict:
        part = parts[k]
        return take_clips(
            stream_rows(source, part.lang, part.first_row),
            part,
            wav_paths[starts[k] : starts[k] + part.count],
            where,
            max_skipped_fraction,
            (exclude or {}).get(part.lang, frozenset()),
        )

    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="download") as pool:
        taken = [pool.submit(take, k) for k in range(len(parts))]
        # result() in part order: the first failing part's error is the job's
        languages = {part.lang: done.result() for part, done in zip(parts, taken)}
    # The order is the job's sample order; the JSON writer sorts the languages' keys.
    manifest = {"source": where, "languages": languages, "language_order": [p.lang for p in parts]}
    atomic.write_json(manifest_path, manifest)
    atomic.write_json(
        stamp_path,
        {
            "manifest_sha256": file_sha256(manifest_path),
            "next_row": {lang: m["next_row"] for lang, m in languages.items()},
        },
    )
    return manifest


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(stamp_path: str, manifest_path: str) -> dict:
    """A download job's manifest, checked against the stamp that stands for it (the jobs
    that read clips declare only the stamp as their input)."""
    stamp = atomic.read_json(stamp_path)
    if file_sha256(manifest_path) != stamp["manifest_sha256"]:
        raise ValueError(
            f"{manifest_path} changed after its download ({stamp_path} has another "
            "checksum): delete both and run the workflow again to download afresh"
        )
    return atomic.read_json(manifest_path)


def next_row(stamp_path: str, lang: str) -> int:
    """Where the job of `stamp_path` stopped reading `lang`'s source rows."""
    return int(atomic.read_json(stamp_path)["next_row"][lang])


def manifest_samples(manifest: dict) -> list[dict]:
    """Every kept clip of a job's manifest, with its language, in the job's sample order
    (`language_order`: the manifest is written with sorted keys, so the mapping of
    languages comes back alphabetical)."""
    order = manifest.get("language_order") or list(manifest["languages"])
    return [{**s, "language": lang} for lang in order for s in manifest["languages"][lang]["samples"]]


def clip_checker(*manifests: dict):
    """A function that reads a clip of these manifests and refuses it when its bytes are
    no longer the ones downloaded (replaced by hand, truncated by a full disk), or when
    it is no regular file of bounded size any more (a FIFO or device put in its place)."""
    expected = {os.path.normpath(s["wav"]): s["sha256"] for m in manifests for s in manifest_samples(m)}

    def load(wav_path: str):
        name = os.path.normpath(wav_path)
        if name not in expected:
            raise ValueError(f"{wav_path}: not a clip of this job's manifest")
        clip = audio.read_regular_file(wav_path)
        if hashlib.sha256(clip).hexdigest() != expected[name]:
            raise ValueError(
                f"{wav_path}: not the clip downloaded (its checksum differs from "
                "the manifest's); delete the job's manifest and run again to download afresh"
            )
        return audio.prepare(clip, wav_path)

    return load
