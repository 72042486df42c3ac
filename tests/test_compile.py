"""qbcompiler: clear failure without it; API generations detected when present."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import OFFLINE, offline_env, snakemake


def test_mxq_target_fails_at_once_without_qbcompiler(tmp_path):
    start = time.monotonic()
    proc = snakemake(
        tmp_path, "compiled/whisper-tiny-random_encoder.mxq", "-j2", "--configfile", str(OFFLINE),
        env=offline_env(double=False), check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "qbcompiler" in out and "dl.mobilint.com" in out
    # before any job ran: no model, no data, and never a placeholder binary
    assert not (tmp_path / "demo").exists() and not (tmp_path / "compiled").exists()
    assert time.monotonic() - start < 60


def test_dry_run_does_not_need_qbcompiler(tmp_path):
    proc = snakemake(tmp_path, "-n", "-j2", "compiled/whisper-small_decoder.mxq", env=offline_env(double=False))
    assert "mxq" in proc.stdout


@pytest.mark.parametrize(
    "version, expected",
    [
        ("0.12.0", {"generation": "0.12", "use_full_seq_len_calib": True}),
        ("1.0.1", {"generation": "1.0", "apply": True, "use_full_seq_length": True}),
        (
            "1.1.0",
            {"generation": "1.1", "apply": True, "attributes": {"calibration": {"use_full_seq_length": True}}},
        ),
    ],
)
def test_llm_config_follows_installed_release(version, expected):
    code = (
        "import json, qbcompiler; from whisper_mxq import compile as c; "
        "print(json.dumps(c.llm_config(qbcompiler)))"
    )
    env = offline_env(QBCOMPILER_DOUBLE_VERSION=version)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == expected


@pytest.mark.parametrize("version, backend, feed", [("1.0.1", "torch", False), ("1.1.0", "hf", True)])
def test_encoder_backend_follows_installed_release(version, backend, feed):
    code = (
        "import json, qbcompiler; from whisper_mxq import compile as c; "
        "k = c.mblt_kwargs(qbcompiler, 'encoder', 80, 3000); "
        "print(json.dumps({'backend': k['backend'], 'feed': list(k['feed_dict']['input_features'].shape) if 'feed_dict' in k else None}))"
    )
    env = offline_env(QBCOMPILER_DOUBLE_VERSION=version)
    out = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert out["backend"] == backend
    assert out["feed"] == ([1, 80, 3000] if feed else None)


def test_missing_qbcompiler_message_names_the_source():
    code = "from whisper_mxq import compile as c; c.import_qbcompiler()"
    proc = subprocess.run([sys.executable, "-c", code], env=offline_env(double=False), capture_output=True, text=True)
    assert proc.returncode != 0
    assert "QbcompilerMissing" in proc.stderr and "dl.mobilint.com" in proc.stderr
