"""Changing one WAV re-runs only its job group, the aggregates and the compile steps."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
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


def test_one_changed_wav_rebuilds_its_group_only(demo_run, tmp_path):
    work = copy_run(demo_run, tmp_path / "run")
    env = offline_env(QBCOMPILER_DOUBLE_LOG=str(tmp_path / "calls.jsonl"))
    # Nothing to do on an untouched copy.
    dry = snakemake(work, "-n", "-j2", "--configfile", str(OFFLINE), env=env)
    assert "Nothing to be done" in dry.stdout + dry.stderr

    wav = work / "data/audio_files/de_de_0001.wav"
    samples, rate = sf.read(wav, dtype="float32")
    sf.write(wav, np.ascontiguousarray(samples[::-1]), rate, subtype="PCM_16")  # new content
    before = _mtimes(work)
    snakemake(work, "-j2", "--configfile", str(OFFLINE), env=env)
    after = _mtimes(work)
    changed = {p for p in before if after.get(p) != before[p]}

    group = {"de_de_0000", "de_de_0001"}  # samples_per_job: 2
    expected_prefixes = (
        *(f"calibration/encoder/encoder_calib_{s}.npy" for s in group),
        *(f"calibration/decoder/sample_{s}/" for s in group),
        "data/labels/de_de_000.json",
        "data/transcriptions.json",
        "data/translations.json",
        "calibration/encoder/whisper_encoder_cali.txt",
        "calibration/decoder/whisper_decoder_calib",
        "calibration/report.json",
        "compiled/whisper-tiny-random_encoder.mxq",
        "compiled/whisper-tiny-random_decoder.mxq",
    )
    unexpected = sorted(p for p in changed if not p.startswith(expected_prefixes))
    assert not unexpected, unexpected
    # the group's own files did rebuild, other samples' did not
    assert "calibration/encoder/encoder_calib_de_de_0001.npy" in changed
    assert "calibration/decoder/sample_de_de_0001/decoder_hidden_states.npy" in changed
    assert "calibration/encoder/encoder_calib_de_de_0002.npy" not in changed
    assert "compiled/whisper-tiny-random_decoder.mblt" not in changed  # needs only the model
