"""Faults: killed jobs, flaky and dead FLEURS reads, a full disk.

Faults are injected from outside the workflow: tests/faults_site/sitecustomize.py on
PYTHONPATH (a hung write, a failing FLEURS read), SIGKILL, a tiny tmpfs.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from whisper_mxq import atomic, encoder_calibration, layout

import calib_helpers
import reliability
from conftest import OFFLINE, copy_run, snakemake
from reliability import fault_env, kill_group, start, wait_for


@pytest.fixture(scope="session")
def finished_run(request) -> Path:
    return reliability.finished_run(request)


def listed_paths(work: Path) -> list[Path]:
    """Every file the two calibration lists name."""
    enc = (work / layout.ENCODER_LIST).read_text().split()
    calib = json.loads((work / layout.DECODER_JSON).read_text())
    return [Path(p) for p in enc] + [Path(p) for pair in calib["calib paths"] for p in pair]


# --- SIGKILL ------------------------------------------------------------------------
def test_sigkill_mid_write_leaves_only_a_hidden_temporary(tmp_path):
    """A writer killed after its bytes are out but before the rename leaves no file under
    the final name, only a dot-file that no list or glob picks up."""
    final = tmp_path / "calibration" / "encoder" / "encoder_calib_en_us_0000.npy"
    script = textwrap.dedent(f"""
        import numpy as np
        from whisper_mxq import atomic
        atomic.write_npy({str(final)!r}, np.ones((1, 3000, 80), np.float32))
    """)
    env = fault_env(tmp_path, FAULT_HANG_ON_WRITE=final.name)
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    wait_for(tmp_path / "hanging", proc, timeout=120)
    kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    assert not final.exists()
    leftovers = [p.name for p in final.parent.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{final.name}.")
    # Shell-style globs (glob.glob, ls *.npy) skip dot-files; pathlib's glob would not.
    assert glob.glob(str(final.parent / "*.npy")) == []
    assert glob.glob(str(final.parent / "encoder_calib_*")) == []
    # The next write of the same file is unaffected by the leftover.
    atomic.write_npy(final, np.ones((1, 3000, 80), np.float32))
    encoder_calibration.check_npy(str(final), (1, 3000, 80))


@pytest.mark.slow
def test_killed_calibration_run_is_redone_and_lists_only_complete_files(finished_run, tmp_path):
    """SIGKILL the whole run (Snakemake and its job) while the calibrate job holding
    en_us_0000 and en_us_0001 is writing the second of their encoder files (written,
    not yet renamed); the next run redoes that job and the lists name only complete
    files, byte-identical to the uninterrupted run's."""
    work = copy_run(finished_run, tmp_path / "work")
    group = [work / layout.ENCODER_NPY.format(sample=f"en_us_{i:04d}") for i in (0, 1)]
    originals = {p: p.read_bytes() for p in group}
    # Gone with the list that names them: the job must run again.
    for p in [*group, work / layout.ENCODER_LIST]:
        p.unlink()
    faults = tmp_path / "faults"
    faults.mkdir()
    env = fault_env(faults, FAULT_HANG_ON_WRITE=",".join(p.name for p in group), FAULT_HANG_AFTER="1")
    proc = start(work, "-j1", "calibration", env=env, log=tmp_path / "killed.log")
    wait_for(faults / "hanging", proc, timeout=240)
    job_pid = int((faults / "hanging").read_text().split()[0])
    kill_group(proc)
    try:
        os.kill(job_pid, signal.SIGKILL)  # in case the job left Snakemake's process group
    except ProcessLookupError:
        pass
    # Mid-write: one file is complete, the other exists only as a hidden temporary.
    hung = next(p for p in group if (faults / "hanging").read_text().split()[1].startswith(f".{p.name}."))
    (done,) = [p for p in group if p != hung]
    assert done.read_bytes() == originals[done]
    assert not hung.exists()
    assert [p.name for p in hung.parent.glob(f".{hung.name}.*")]

    # A SIGKILLed Snakemake leaves its lock behind; --unlock is the documented way out.
    snakemake(work, "--unlock", "--configfile", str(OFFLINE), env=fault_env(faults))
    proc = snakemake(work, "-j2", "calibration", "--configfile", str(OFFLINE), env=fault_env(faults))
    assert "calibrate_" in proc.stdout + proc.stderr
    for p in group:
        assert p.read_bytes() == originals[p]
    listed = listed_paths(work)
    assert listed and all(not p.name.startswith(".") for p in listed)
    for p in listed:
        np.load(p, allow_pickle=False)  # complete: a truncated file raises here


# --- flaky and dead FLEURS --------------------------------------------------------------
@pytest.mark.slow
def test_flaky_download_is_retried_and_a_dead_one_fails_its_language_only(finished_run, tmp_path):
    """en_us's first source read fails (retried: `retries: 2`); de_de's always fails (its
    first job fails after 3 attempts, the job continuing it never starts); with
    --keep-going fr_fr still finishes. The offline demo's jobs hold two clips: 000-001
    en_us, 002-003 de_de, 004-005 fr_fr."""
    work = copy_run(finished_run, tmp_path / "work")
    redo = {"000": "en_us", "001": "en_us", "002": "de_de", "003": "de_de", "004": "fr_fr", "005": "fr_fr"}
    before = {}
    for job in redo:
        (work / layout.MANIFEST.format(job=job)).unlink()
        (work / layout.DOWNLOAD_STAMP.format(job=job)).unlink()
    for lang in set(redo.values()):
        for i in range(4):
            wav = work / layout.AUDIO.format(sample=f"{lang}_{i:04d}")
            before[wav] = wav.read_bytes()
    faults = tmp_path / "faults"
    faults.mkdir()
    env = fault_env(faults, FAULT_FLEURS_FLAKY="en_us", FAULT_FLEURS_DOWN="de_de")
    targets = [layout.DOWNLOAD_STAMP.format(job=job) for job in redo]
    proc = snakemake(work, "-j2", "--keep-going", *targets, "--configfile", str(OFFLINE), env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    reads = {lang: len((faults / f"fleurs_reads_{lang}").read_text().split()) for lang in set(redo.values())}
    assert reads == {"en_us": 3, "de_de": 3, "fr_fr": 2}  # en_us: 000 twice, 001 once
    assert "FLEURS unreachable for de_de" in out
    for job, lang in redo.items():
        assert (work / layout.DOWNLOAD_STAMP.format(job=job)).exists() == (lang != "de_de")
    for wav, content in before.items():
        if "de_de" not in wav.name:
            assert wav.read_bytes() == content  # the retry wrote the same clips


# --- full disk ----------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: a real ENOSPC. Needs root (mount); skipped elsewhere."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_full_disk_names_the_file_and_leaves_nothing(tiny_disk):
    final = tiny_disk / "calibration" / "encoder" / "encoder_calib_en_us_0000.npy"
    with pytest.raises(OSError) as caught:
        atomic.write_npy(final, np.ones((1, 3000, 80), np.float32))  # 960 KB
    assert caught.value.errno == errno.ENOSPC
    assert str(final) in str(caught.value) and "No space left" in str(caught.value)
    assert list(final.parent.iterdir()) == []  # no final file, no temporary


def test_full_disk_in_a_calibration_job_names_the_file(finished_run, tiny_disk):
    """The encoder calibration step itself, writing onto a full disk."""
    snapshot = str(finished_run / "models" / "whisper-tiny-random")
    wav = str(finished_run / layout.AUDIO.format(sample="en_us_0000"))
    npy = tiny_disk / layout.ENCODER_NPY.format(sample="en_us_0000")
    with pytest.raises(OSError, match="No space left") as caught:
        calib_helpers.calibrate_encoder(snapshot, [wav], [str(npy)])
    assert str(npy) in str(caught.value)


def test_enospc_from_any_writer_names_the_file(tmp_path, monkeypatch):
    """Where no tmpfs can be mounted: the same error, raised by a patched fsync."""

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    final = tmp_path / "data" / "manifests" / "en_us.json"
    with pytest.raises(OSError, match=f"cannot write {final}: No space left"):
        atomic.write_json(final, {"language": "en_us"})
    assert list(final.parent.iterdir()) == []


# --- file modes without touching the umask -------------------------------------------
def test_writers_never_set_the_umask_and_give_plain_modes(tmp_path, monkeypatch):
    """Reading the umask with os.umask sets it, process-wide, while writer threads create
    files: the writers must not call it. Their files and folders still get the modes a
    plain open() and mkdir() give under the umask."""
    mask = os.umask(0o027)
    os.umask(mask)

    def forbidden(*args):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", forbidden)
    for umask in (0o022, 0o077, 0o002):
        _set_umask_via_libc(umask)
        assert atomic.current_umask() == umask
        f = tmp_path / f"f{umask:o}.json"
        atomic.write_json(f, {"x": 1})
        with atomic.atomic_dir(tmp_path / f"d{umask:o}") as d:
            (d / "inside").write_text("x")
        assert (f.stat().st_mode & 0o777, (tmp_path / f"d{umask:o}").stat().st_mode & 0o777) == (
            0o666 & ~umask,
            0o777 & ~umask,
        )
    _set_umask_via_libc(mask)


def _set_umask_via_libc(mask: int) -> None:
    """Set the umask behind the patched os.umask, as another thread of the process could."""
    import ctypes

    ctypes.CDLL(None).umask(mask)
