"""A later download job of a language starts at the row where the one before stopped:
rows before it are passed over from the shards' footers, unread, and the rows after it
are exactly those a read from the first row gives."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from whisper_mxq import data
from whisper_mxq.demo import fleurs_row, write_fleurs_rows

from conftest import offline_env
from reliability import tone, wav


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """en_us in two shards, the first cut into row groups of 2 rows."""
    root = tmp_path_factory.mktemp("rows") / "fleurs"
    clips = [fleurs_row("en_us", i, f"sentence {i}", wav(tone(0.5 + 0.1 * i))) for i in range(7)]
    first = root / "en_us" / "validation" / "0000.parquet"
    write_fleurs_rows(first, clips[:5])
    table = pq.read_table(first)
    pq.write_table(table, first, row_group_size=2)  # 3 row groups: 2 + 2 + 1
    write_fleurs_rows(root / "en_us" / "validation" / "0001.parquet", clips[5:])
    assert pq.ParquetFile(first).metadata.num_row_groups == 3
    return data.Source(str(root))


@pytest.mark.parametrize("start", [0, 1, 2, 3, 5, 6, 7, 9])
def test_rows_from_a_start_equal_the_tail_of_a_full_read(source, start):
    everything = [r["id"] for r in data.stream_rows(source, "en_us")]
    assert everything == list(range(1, 8))
    assert [r["id"] for r in data.stream_rows(source, "en_us", start)] == everything[start:]


def test_a_chained_download_continues_at_the_row_the_job_before_stopped(source, tmp_path):
    wavs = [str(tmp_path / f"en_us_{i:04d}.wav") for i in range(5)]
    first = data.download_job(
        source, [data.Part("en_us", 3)], wavs[:3], str(tmp_path / "a.json"), str(tmp_path / "a.stamp.json"), 0.5
    )
    next_row = data.next_row(str(tmp_path / "a.stamp.json"), "en_us")
    assert next_row == first["languages"]["en_us"]["next_row"] == 3
    second = data.download_job(
        source,
        [data.Part("en_us", 2, next_row)],
        wavs[3:],
        str(tmp_path / "b.json"),
        str(tmp_path / "b.stamp.json"),
        0.5,
    )
    rows = [s["row"] for s in second["languages"]["en_us"]["samples"]]
    assert rows == [3, 4] and [s["fleurs_id"] for s in second["languages"]["en_us"]["samples"]] == [4, 5]


def test_reading_a_source_exits_cleanly(source):
    """pyarrow's reader threads, reading a Python file object (fsspec's, for the Hub and a
    local folder alike), can outlive the interpreter's teardown and abort the process at
    exit ("terminate called without an active exception") after its work is done, which
    failed Snakemake jobs at random. The readers run on the calling thread instead; each
    run here is a fresh interpreter because the abort comes at exit."""
    code = (
        "import sys; from whisper_mxq import data; s = data.Source(sys.argv[1]); "
        "assert data.sentence_texts(s, 'en_us') if sys.argv[2] == 'texts' else list(data.stream_rows(s, 'en_us'))"
    )
    for attempt in range(12):
        cmd = [sys.executable, "-c", code, source.location, "texts" if attempt % 2 else "rows"]
        proc = subprocess.run(cmd, env=offline_env(), capture_output=True, text=True)
        assert proc.returncode == 0, f"attempt {attempt} ({cmd[-1]}): exit {proc.returncode}\n{proc.stderr[-2000:]}"
