"""The DAG before anything runs: default config, no network, config errors up front."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import offline_env, snakemake

from whisper_mxq.languages import DEFAULT_LANGUAGES


def _job_counts(text: str) -> dict[str, int]:
    table = text.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def _planned(workdir, *args) -> set[str]:
    """Output files the dry run plans, from Snakemake's --summary."""
    proc = snakemake(workdir, "--summary", *args, env=offline_env(double=False))
    rows = [line.split("\t") for line in proc.stdout.splitlines()[1:] if "\t" in line]
    return {row[0] for row in rows}


def test_default_config_dry_run_shows_whole_dag(tmp_path):
    proc = snakemake(tmp_path, "-n", "-j8", "compiled/whisper-small_decoder.mxq", env=offline_env(double=False))
    counts = _job_counts(proc.stdout)
    assert len(DEFAULT_LANGUAGES) == 17
    assert sum(counts.get(f"download_{lang}", 0) for lang in DEFAULT_LANGUAGES) == 17
    assert counts["snapshot_model"] == 1 and counts["mxq"] == 1 and counts["mblt"] == 1
    # samples_per_job auto: 1000 a job where jobs get a GPU (one job), else 100 (20 a
    # language: 5 whole languages a job, 17 languages); device auto asks nvidia-smi
    gpu = shutil.which("nvidia-smi") is not None
    assert sum(v for k, v in counts.items() if k.startswith("calibrate_")) == (1 if gpu else 4)
    files = _planned(tmp_path, "compiled/whisper-small_decoder.mxq")
    enc = {f for f in files if re.fullmatch(r"calibration/encoder/encoder_calib_[a-z0-9_]+_\d{4}\.npy", f)}
    dec = {f for f in files if re.fullmatch(r"calibration/decoder/sample_[a-z0-9_]+_\d{4}/decoder_hidden_states\.npy", f)}
    assert len(enc) == len(dec) == 17 * 20
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()


@pytest.mark.parametrize("device, jobs, handed_down", [("cpu", 4, None), ("cuda", 1, None), ("cuda", 4, "100")])
def test_samples_per_job_auto_follows_the_devices(tmp_path, device, jobs, handed_down):
    """auto: 100 samples a job on CPU, 1000 where calibrate and label jobs hold a GPU;
    a value already in the environment (a cluster job's parse, handed down from where
    the run started) wins over what this host sees."""
    cfg = tmp_path / "device.yaml"
    cfg.write_text(f"calibration: {{device: {device}, samples_per_job: auto}}\nlabels: {{device: {device}}}\n")
    env = offline_env(double=False)
    env.pop("WHISPER_MXQ_AUTO_SAMPLES_PER_JOB", None)
    if handed_down:
        env["WHISPER_MXQ_AUTO_SAMPLES_PER_JOB"] = handed_down
    proc = snakemake(tmp_path, "-n", "-j8", "calibration", "--configfile", str(cfg), env=env)
    groups = sorted(k for k in _job_counts(proc.stdout) if k.startswith("calibrate_"))
    assert groups == [f"calibrate_{j:03d}" for j in range(jobs)]


def test_samples_per_job_splits_groups(tmp_path):
    cfg = tmp_path / "groups.yaml"
    cfg.write_text("samples_per_language: 10\ncalibration: {samples_per_job: 3}\n")
    proc = snakemake(tmp_path, "-n", "-j8", "calibration", "--configfile", str(cfg), env=offline_env(double=False))
    counts = _job_counts(proc.stdout)
    groups = [k for k in counts if k.startswith("calibrate_")]
    assert sorted(groups) == [f"calibrate_{j:03d}" for j in range(4 * 17)]  # 3 + 3 + 3 + 1 a language


@pytest.mark.parametrize(
    "override, key",
    [
        ("samples_per_language: 0", "samples_per_language"),
        ("calibration: {translate_ratio: 1.5}", "translate_ratio"),
        ("languages: [xx_yy]", "languages"),
        ("languages: ['../etc']", "languages"),
        ("compile: {device: tpu}", "device"),
        ("bogus_key: 1", "bogus_key"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, override, key):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(override + "\n")
    proc = snakemake(tmp_path, "-n", "-j1", "--configfile", str(cfg), env=offline_env(double=False), check=False)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr
    assert not (tmp_path / "data").exists()
