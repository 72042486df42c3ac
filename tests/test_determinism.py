"""Determinism: two clean runs of the offline demo (CPU), one at -j2 (the session's demo
run) and one at -j1 from an empty directory, give byte-identical data and calibration files.
Lists and JSON embed the absolute working directory by design; it is replaced before
comparing, nothing else is."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_mxq import layout

import reliability
from conftest import OFFLINE, offline_env, snakemake


@pytest.fixture(scope="session")
def finished_run(request) -> Path:
    return reliability.finished_run(request)


COMPARED = ("calibration", "data/manifests", "data/audio_files")


def _files(work: Path) -> dict[str, Path]:
    return {
        p.relative_to(work).as_posix(): p
        for top in COMPARED
        for p in sorted((work / top).rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _content(path: Path, work: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix in (".txt", ".json"):
        for prefix in {str(work), str(work.resolve())}:
            data = data.replace(prefix.encode(), b"<WORKDIR>")
    return data


@pytest.mark.slow
def test_clean_runs_at_j1_and_j2_are_byte_identical(finished_run, tmp_path):
    work = tmp_path / "clean"
    snakemake(work, "-j1", "calibration", "--configfile", str(OFFLINE), env=offline_env(double=False))
    fresh, first = _files(work), _files(finished_run)
    n = 6 * 4  # languages x samples_per_language of tests/config/offline.yaml
    assert sum(k.endswith(".npy") for k in fresh) == 3 * n  # encoder + two decoder arrays
    assert {layout.ENCODER_LIST, layout.DECODER_JSON, layout.DECODER_METADATA, layout.CALIBRATION_REPORT} <= set(fresh)
    assert b"<WORKDIR>" in _content(work / layout.ENCODER_LIST, work)  # prefix really replaced
    missing = sorted(set(fresh) - set(first))
    assert missing == []
    differ = [k for k in fresh if _content(fresh[k], work) != _content(first[k], finished_run)]
    assert differ == []
