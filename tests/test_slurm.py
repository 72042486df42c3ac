"""The offline demo submitted to a real SLURM controller through profiles/slurm-cpu:
its data and calibration files are byte-identical to a local run's.

The cluster is one node on localhost that tests/slurm/start_slurm.sh installs and
starts (root, Debian). The test skips, saying why, where there is no SLURM client or
the controller does not come up."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import OFFLINE, REPO, offline_env, snakemake, snakemake_cmd

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

START = REPO / "tests" / "slurm" / "start_slurm.sh"
# Up to the calibration files: downloads and snapshots run as local rules, the encoder
# and decoder jobs on the cluster. (Targets go before --configfile, which takes a list.)
TARGETS = ("calibration",)
COMPARED = ("data", "calibration")
# Files that record absolute paths (the calibration lists, manifests): compared with
# the working directory replaced by a placeholder. Everything else byte for byte.
TEXT_SUFFIXES = {".json", ".txt"}
# No slurmdbd on the test cluster: poll with squeue (slurm.conf keeps finished jobs for
# MinJobAge=600 s), and start polling after 2 s instead of the plugin's 40.
SLURM_TEST_ARGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--slurm-no-account",
    "--slurm-keep-successful-logs",
)


def slurm_unavailable() -> str | None:
    """Why this machine cannot run the test, or None once the controller answers."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install snakemake-executor-plugin-slurm)"
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

    # The local reference runs beside the SLURM run, which spends much of its time
    # waiting between status checks.
    started = time.monotonic()
    local.mkdir()
    with open(local / "snakemake.out", "w") as out:
        reference = subprocess.Popen(
            snakemake_cmd(local, *TARGETS, "-j2", "--configfile", str(OFFLINE)),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        proc = snakemake(
            remote,
            *TARGETS,
            "--workflow-profile",
            str(REPO / "profiles" / "slurm-cpu"),
            *SLURM_TEST_ARGS,
            "--configfile",
            str(OFFLINE),
            env=env,
        )
        slurm_s = time.monotonic() - started
        reference.wait(timeout=900)
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
    assert reference.returncode == 0, (local / "snakemake.out").read_text()[-4000:]
    print(f"SLURM run {slurm_s:.0f} s, both runs {time.monotonic() - started:.0f} s")

    # One sbatch job leaves one log (kept by --slurm-keep-successful-logs). Grouping: the
    # the 12 calibrate jobs (one per sample group) go in one sbatch job, not 12.
    sbatch_logs = sorted((remote / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert [p.parent.name.split("_")[:2] for p in sbatch_logs] == [["group", "calibrate"]], (
        f"expected one sbatch job for group calibrate, saw {sbatch_logs}:\n{proc.stderr[-3000:]}"
    )

    want, got = tree(local), tree(remote)
    assert sorted(got) == sorted(want), "the two runs made different files"
    assert sum(name.endswith(".npy") for name in want) == 6 * 4 * 3  # encoder + 2 decoder per clip
    assert b"<WORKDIR>" in want["calibration/decoder/whisper_decoder_calib.json"]
    differ = [name for name in want if got[name] != want[name]]
    assert not differ, f"SLURM outputs differ from the local run: {differ}"
