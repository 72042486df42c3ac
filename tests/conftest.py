"""Shared helpers: run the real workflow in a scratch working directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OFFLINE = REPO / "tests" / "config" / "offline.yaml"
DOUBLE = REPO / "tests" / "qbcompiler_double"
sys.path.insert(0, str(REPO / "workflow"))


def offline_env(double: bool = True, **extra: str) -> dict:
    """No Hub, no network; the qbcompiler test double importable when asked for."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("WHISPER_MXQ_SAMPLES_PER_JOB", None)  # each run resolves `auto` for itself
    paths = [str(REPO / "workflow")] + ([str(DOUBLE)] if double else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def snakemake_cmd(workdir: Path, *args: str, python: str | Path = sys.executable) -> list[str]:
    """This checkout's Snakefile run in `workdir` by `python`'s snakemake (put --configfile
    last: it takes several values and would swallow targets after it)."""
    return [str(python), "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]


def snakemake(workdir: Path, *args: str, env: dict | None = None, check: bool = True, timeout: int = 900):
    cmd = snakemake_cmd(workdir, *args)
    proc = subprocess.run(cmd, env=env or offline_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def read_calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The offline demo, run once end to end (both compile targets, via the double)."""
    work = tmp_path_factory.mktemp("demo")
    env = offline_env(QBCOMPILER_DOUBLE_LOG=str(work / "qbcompiler_calls.jsonl"))
    proc = snakemake(work, "-j2", "--configfile", str(OFFLINE), env=env)
    (work / "console.txt").write_text(proc.stdout + proc.stderr)  # what the user saw
    return work


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a finished run (metadata and file times included) to change freely."""
    shutil.copytree(src, dst, symlinks=True)
    return dst
