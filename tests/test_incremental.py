"""Only stale outputs rebuild: a deleted per-sample file brings back its own job's
files and the lists, nothing else; clips read through a stamp are checked."""

from __future__ import annotations

import os

import pytest

from conftest import OFFLINE, copy_run, offline_env, snakemake

pytestmark = pytest.mark.slow


def _mtimes(root):
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".snakemake", "logs", "benchmarks")]
        for f in files:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, root)] = os.stat(path).st_mtime_ns
    return out


def _rerun(work, env, *targets) -> set[str]:
    before = _mtimes(work)
    snakemake(work, "-j2", *targets, "--configfile", str(OFFLINE), env=env)
    after = _mtimes(work)
    return {p for p in after if after[p] != before.get(p)}


def test_a_deleted_calibration_file_rebuilds_its_job_and_the_lists_only(demo_run, tmp_path):
    work = copy_run(demo_run, tmp_path / "run")
    env = offline_env(QBCOMPILER_DOUBLE_LOG=str(tmp_path / "calls.jsonl"))
    dry = snakemake(work, "-n", "-j2", "--configfile", str(OFFLINE), env=env)
    assert "Nothing to be done" in dry.stdout + dry.stderr  # an untouched copy
    # The lists name the files of the run copied; lists of this copy's own paths first.
    snakemake(work, "-j2", "--forcerun", "encoder_list", "decoder_calib", "--configfile", str(OFFLINE), env=env)

    gone = work / "calibration/decoder/sample_de_de_0001/encoder_hidden_states.npy"
    gone.unlink()
    changed = _rerun(work, env, "calibration")
    job = {"de_de_0000", "de_de_0001"}  # calibrate_002: samples_per_job 2, de_de second
    expected = {
        *(f"calibration/encoder/encoder_calib_{s}.npy" for s in job),
        *(
            f"calibration/decoder/sample_{s}/{f}"
            for s in job
            for f in ("encoder_hidden_states.npy", "decoder_hidden_states.npy")
        ),
        "calibration/jobs/002.json",
        "calibration/encoder/whisper_encoder_cali.txt",
        "calibration/decoder/whisper_decoder_calib.json",
        "calibration/decoder/whisper_decoder_calib_metadata.json",
        "calibration/report.json",
    }
    assert changed == expected
    assert gone.exists()
    # The compile finds lists of the same content: nothing to do, no recompile.
    dry = snakemake(work, "-n", "-j2", "--configfile", str(OFFLINE), env=env)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_a_deleted_clip_comes_back_with_its_download_only(demo_run, tmp_path):
    work = copy_run(demo_run, tmp_path / "run")
    env = offline_env(QBCOMPILER_DOUBLE_LOG=str(tmp_path / "calls.jsonl"))
    (work / "data/audio_files/fr_fr_0003.wav").unlink()
    changed = _rerun(work, env, "data")
    # download_005 holds fr_fr 2-3; its stamp has the same content, so nothing downstream
    # of it is stale
    assert changed == {
        "data/audio_files/fr_fr_0002.wav",
        "data/audio_files/fr_fr_0003.wav",
        "data/manifests/005.json",
        "data/manifests/005.stamp.json",
    }
    dry = snakemake(work, "-n", "-j2", "--configfile", str(OFFLINE), env=env)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_a_clip_changed_after_download_is_refused_by_the_job_that_reads_it(demo_run, tmp_path):
    work = copy_run(demo_run, tmp_path / "run")
    env = offline_env(QBCOMPILER_DOUBLE_LOG=str(tmp_path / "calls.jsonl"))
    clip = work / "data/audio_files/de_de_0001.wav"
    clip.write_bytes((work / "data/audio_files/de_de_0002.wav").read_bytes())
    proc = snakemake(work, "-j2", "--forcerun", "calibrate_002", "--configfile", str(OFFLINE), env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "data/audio_files/de_de_0001.wav: not the clip downloaded" in out
