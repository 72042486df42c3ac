"""The offline demo submitted to a real SLURM controller through profiles/slurm-cpu:
its data and calibration files are byte-identical to a local run's.

The cluster is a one node on localhost that tests/slurm/start_slurm.sh installs and
starts (root, Debian). The test skips, saying why, where there is no SLURM client or
the controller does not come up."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import OFFLINE, REPO, offline_env, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

START = REPO / "tests" / "slurm" / "start_slurm.sh"
# The cluster-side jobs: labels and calibration (the rest are local rules).
TARGETS = ("calibration", "data/transcriptions.json", "data/translations.json")
COMPARED = ("data", "calibration")
# Files that record absolute paths (the calibration lists, manifests): compared with
# the working directory replaced by a placeholder. Everything else byte for byte.
TEXT_SUFFIXES = {".json", ".txt"}
# No slurmdbd on the test cluster: poll with squeue (slurm.conf keeps finished jobs for
# MinJobAge=600 s), and start polling after 2 s instead of the plugin's 40.
SLURM_TEST_ARGS = (
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--slurm-no-account",
    "--slurm-keep-successful-logs",
)


def slurm_unavailable() -> str | None:
    """Why this machine cannot run the test, or None once the controller answers."""
    if shutil.which("sinfo") is None:
        return "no SLURM client (sinfo) on PATH: run tests/slurm/start_slurm.sh as root first"
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return f"SLURM controller did not come up: {proc.stderr.strip()[-600:]}"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = slurm_unavailable()
    if reason:
        print(f"SKIP test_slurm: {reason}")
        pytest.skip(reason)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under data/ and calibration/, workdir prefix normalised in text."""
    files = {}
    prefix = str(root.resolve()).encode()
    for top in COMPARED:
        for path in sorted((root / top).rglob("*")):
            if not path.is_file():
                continue
            data = path.read_bytes()
            if path.suffix in TEXT_SUFFIXES:
                data = data.replace(prefix, b"<WORKDIR>")
            files[str(path.relative_to(root))] = data
    return files


def test_demo_on_slurm_matches_local_run(cluster, tmp_path):
    env = offline_env()
    local, remote = tmp_path / "local", tmp_path / "slurm"

    started = time.monotonic()
    snakemake(local, "-j2", "--configfile", str(OFFLINE), *TARGETS, env=env)
    local_s = time.monotonic() - started

    started = time.monotonic()
    proc = snakemake(
        remote,
        "--workflow-profile", str(REPO / "profiles" / "slurm-cpu"),
        "--configfile", str(OFFLINE),
        *SLURM_TEST_ARGS,
        *TARGETS,
        env=env,
    )
    slurm_s = time.monotonic() - started
    print(f"local run {local_s:.0f} s, SLURM run {slurm_s:.0f} s")

    log = proc.stdout + proc.stderr
    submitted = re.findall(r"external jobid '?(\d+)'?", log)
    # Grouping: the 12 label jobs go in one sbatch job, the 24 calibration jobs in another.
    assert len(set(submitted)) == 2, f"expected 2 sbatch jobs, saw {submitted}:\n{log[-3000:]}"
    assert list((remote / ".snakemake" / "slurm_logs").rglob("*.log")), "no SLURM job logs"

    want, got = tree(local), tree(remote)
    assert sorted(got) == sorted(want), "the two runs made different files"
    differ = [name for name in want if got[name] != want[name]]
    assert not differ, f"SLURM outputs differ from the local run: {differ}"
