"""A changed source is stale: a local FLEURS folder or audio folder is tracked by its
files, per language. A changed row of one language's shard, a clip added to an audio
folder, a deleted shard: the dry run plans that language's jobs and the aggregates
only, its `reason:` names the changed file, and the real rerun's files equal a clean
run's on the changed source, byte for byte."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import OFFLINE, offline_env, snakemake

pytestmark = pytest.mark.slow
LANGS = ["en_us", "de_de", "fr_fr"]  # two samples each, one job each: 000, 001, 002
ENV = offline_env(double=False)


def _config(work: Path, source: str) -> Path:
    cfg = work / "mine.yaml"
    cfg.write_text(
        f"fleurs: {{source: {source}, split: validation}}\nlanguages: {LANGS}\n"
        "samples_per_language: 2\ncalibration: {samples_per_job: 2}\n"
    )
    return cfg


def _workdir(demo_run: Path, root: Path) -> Path:
    """A fresh run folder holding the demo's models (built, not run here again)."""
    root.mkdir()
    for name in ("whisper-tiny-random", "openai-whisper-tiny-random.pt"):
        src = demo_run / "demo" / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / "demo" / name)
    return root


def _fleurs(demo_run: Path, work: Path) -> Path:
    mine = work / "my_fleurs"
    for lang in LANGS:
        shutil.copytree(demo_run / "demo" / "fleurs" / lang, mine / lang)
    return mine


def _audio_folder(demo_run: Path, work: Path, rows_per_lang: int = 3) -> Path:
    """The demo's speech as an audio folder: WAV files and validation.tsv."""
    mine = work / "my_audio"
    lines = ["file\tlanguage\ttranscription"]
    for lang in LANGS:
        table = pq.read_table(demo_run / "demo/fleurs" / lang / "validation/0000.parquet").to_pylist()
        for i, row in enumerate(table[:rows_per_lang]):
            path = mine / lang / f"{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(row["audio"]["bytes"])
            lines.append(f"{lang}/{i}.wav\t{lang}\t{row['transcription']}")
    (mine / "validation.tsv").write_text("\n".join(lines) + "\n")
    return mine


def _run(work: Path, cfg: Path, *args: str):
    return snakemake(work, "-j2", *args, "--configfile", str(OFFLINE), str(cfg), env=ENV)


def _planned(work: Path, cfg: Path, target: str) -> tuple[set[str], str]:
    out = _dry(work, cfg, target)
    table = out.split("Job stats:", 1)[1].split("Reasons:")[0]
    return {m[1] for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}, out


def _dry(work: Path, cfg: Path, target: str) -> str:
    proc = snakemake(work, "-n", target, "--configfile", str(OFFLINE), str(cfg), env=ENV)
    return proc.stdout + proc.stderr


def _files(root: Path, under: tuple[str, ...]) -> dict[str, bytes]:
    """Every file under these folders, its run folder's absolute path written as '.'."""
    out = {}
    for top in under:
        for dirpath, _, names in os.walk(root / top):
            for name in names:
                path = Path(dirpath) / name
                out[str(path.relative_to(root))] = path.read_bytes().replace(str(root).encode(), b".")
    return out


def _same_as_clean_run(work: Path, source: str, cfg_source: str, demo_run: Path, target: str, under):
    clean = _workdir(demo_run, work.parent / f"{work.name}-clean")
    shutil.copytree(work / source, clean / source)
    _run(clean, _config(clean, cfg_source), target)
    got, want = _files(work, under), _files(clean, under)
    assert sorted(got) == sorted(want)
    assert [p for p in got if got[p] != want[p]] == []


def test_a_changed_row_of_one_shard_reruns_that_language_only(demo_run, tmp_path):
    work = _workdir(demo_run, tmp_path / "run")
    _fleurs(demo_run, work)
    cfg = _config(work, "my_fleurs")
    _run(work, cfg, "calibration")
    assert "Nothing to be done" in _dry(work, cfg, "calibration")

    shard = work / "my_fleurs/de_de/validation/0000.parquet"
    table = pq.read_table(shard)
    texts = table.column("transcription").to_pylist()
    texts[0] += " (corrected)"
    pq.write_table(
        table.set_column(table.schema.get_field_index("transcription"), "transcription", pa.array(texts)), shard
    )

    planned, out = _planned(work, cfg, "calibration")
    # de_de is job 001; the lists and the report include its samples
    assert planned == {"source_de_de", "download_001", "calibrate_001", "encoder_list", "decoder_calib", "calibration"}
    assert re.search(
        r"Job \d+: source_de_de: .*\nReason: Updated input files: my_fleurs/de_de/validation/0000.parquet", out
    )
    _run(work, cfg, "calibration")
    assert "Nothing to be done" in _dry(work, cfg, "calibration")
    _same_as_clean_run(work, "my_fleurs", "my_fleurs", demo_run, "calibration", ("data", "calibration"))


def test_a_clip_added_to_an_audio_folder_reruns_that_language_only(demo_run, tmp_path):
    work = _workdir(demo_run, tmp_path / "run")
    mine = _audio_folder(demo_run, work)
    # fr_fr's first clip is unreadable: the download skips it and takes the next
    (mine / "fr_fr/0.wav").write_bytes(b"not audio")
    cfg = _config(work, "my_audio")
    _run(work, cfg, "data")

    # the clip mended and a fourth one listed (at the end: no other row moves)
    table = pq.read_table(demo_run / "demo/fleurs/fr_fr/validation/0000.parquet").to_pylist()
    (mine / "fr_fr/0.wav").write_bytes(table[0]["audio"]["bytes"])
    (mine / "fr_fr/3.wav").write_bytes(table[3]["audio"]["bytes"])
    with open(mine / "validation.tsv", "a") as f:
        f.write(f"fr_fr/3.wav\tfr_fr\t{table[3]['transcription']}\n")

    planned, out = _planned(work, cfg, "data")
    assert planned == {"source_fr_fr", "download_002", "data"}
    # both clips are newer than the stamp; Snakemake lists them in no fixed order
    reason = re.search(r"Job \d+: source_fr_fr: .*\nReason: Updated input files: (.*)", out).group(1)
    assert set(reason.split(", ")) == {"my_audio/fr_fr/0.wav", "my_audio/fr_fr/3.wav"}
    _run(work, cfg, "data")
    _same_as_clean_run(work, "my_audio", "my_audio", demo_run, "data", ("data",))


def test_a_deleted_shard_reruns_that_language_only(demo_run, tmp_path):
    work = _workdir(demo_run, tmp_path / "run")
    mine = _fleurs(demo_run, work)
    # en_us in two shards; the first one goes
    shard = mine / "en_us/validation/0000.parquet"
    table = pq.read_table(shard)
    pq.write_table(table.slice(0, 1), shard)
    pq.write_table(table.slice(1), mine / "en_us/validation/0001.parquet")
    cfg = _config(work, "my_fleurs")
    _run(work, cfg, "data")

    shard.unlink()
    planned, out = _planned(work, cfg, "data")
    assert planned == {"source_en_us", "download_000", "data"}
    assert re.search(r"Job \d+: source_en_us: .*\nReason: Set of input files has changed", out)
    _run(work, cfg, "data")
    _same_as_clean_run(work, "my_fleurs", "my_fleurs", demo_run, "data", ("data",))
