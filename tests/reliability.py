"""Helpers shared by the reliability tests (bad inputs, faults, determinism, security)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import OFFLINE, REPO, offline_env, snakemake_cmd

FAULTS_SITE = REPO / "tests" / "faults_site"


def finished_run(request) -> Path:
    """The session's offline demo run; WHISPER_MXQ_DEMO_RUN names an existing finished one
    instead (to iterate on these tests without paying for a fresh demo run)."""
    given = os.environ.get("WHISPER_MXQ_DEMO_RUN")
    return Path(given) if given else request.getfixturevalue("demo_run")


def wav(samples: np.ndarray, rate: int = 16_000, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def tone(seconds: float, rate: int = 16_000, channels: int = 1) -> np.ndarray:
    """A 440 Hz tone: loud enough to pass the silence check, any length, any layout."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def fault_env(fault_dir: Path, **faults: str) -> dict:
    """The offline environment plus tests/faults_site (sitecustomize) and its settings."""
    env = offline_env(double=False, FAULT_DIR=str(fault_dir), **faults)
    env["PYTHONPATH"] = os.pathsep.join([str(FAULTS_SITE), env["PYTHONPATH"]])
    return env


def start(workdir: Path, *args: str, env: dict, log: Path) -> subprocess.Popen:
    """Snakemake in its own process group, so one killpg reaches it and all its jobs."""
    with open(log, "w") as out:
        return subprocess.Popen(
            snakemake_cmd(workdir, *args, "--configfile", str(OFFLINE)),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def normalized(path: Path, workdir: Path) -> bytes:
    """File bytes with the working directory's absolute prefix replaced (lists and JSON
    embed absolute paths by design)."""
    return path.read_bytes().replace(str(workdir.resolve()).encode(), b"<WORKDIR>")
