"""The DAG before anything runs: default config, no network, config errors up front."""

from __future__ import annotations

import re
import shutil

import pytest

from whisper_mxq import jobs as jobs_module
from whisper_mxq.languages import DEFAULT_LANGUAGES

from conftest import offline_env, snakemake


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
    assert counts["snapshot_model"] == 1 and counts["mxq"] == 1 and counts["mblt"] == 1
    # samples_per_job auto: one job per GPU where jobs get one (languages packed), else
    # one language a job (of at most 100: the 17 x 20 samples in 17 jobs); device auto
    # asks nvidia-smi. Downloads follow the same plan.
    n_jobs = 1 if shutil.which("nvidia-smi") else 17
    for step in ("download", "calibrate"):
        assert sorted(k for k in counts if k.startswith(step + "_")) == [f"{step}_{j:03d}" for j in range(n_jobs)]
    assert not any(k.startswith("label_") for k in counts)  # the compile does not need labels
    files = _planned(tmp_path, "compiled/whisper-small_decoder.mxq")
    enc = {f for f in files if re.fullmatch(r"calibration/encoder/encoder_calib_[a-z0-9_]+_\d{4}\.npy", f)}
    dec = {
        f for f in files if re.fullmatch(r"calibration/decoder/sample_[a-z0-9_]+_\d{4}/decoder_hidden_states\.npy", f)
    }
    assert len(enc) == len(dec) == 17 * 20
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()


def test_dry_run_prints_a_line_a_job_and_the_full_form_with_verbose(tmp_path):
    """Jobs of many files print one line each (their rule, clips and languages) and
    Snakemake's reason; `--verbose` prints their inputs and outputs again."""
    env = offline_env(double=False)
    out = snakemake(tmp_path, "compiled/whisper-small_decoder.mxq", "-n", env=env).stdout
    assert len(out) < 20_000, f"{len(out)} characters"  # every file listed: 97 kB
    assert "Host:" not in out  # the run's header stays in its log
    assert re.search(r"^Job \d+: download_003: 20 clips \(el_gr 0-19\)\nReason: Missing output files: ", out, re.M)
    calibrate = re.findall(r"^\s*Job \d+: (calibrate_\d+): 20 clips \((\w+) 0-19\)$", out, re.M)
    assert sorted(lang for _, lang in calibrate) == sorted(DEFAULT_LANGUAGES)
    assert "calibration/encoder/encoder_calib_el_gr_0000.npy" not in out
    full = snakemake(tmp_path, "compiled/whisper-small_decoder.mxq", "-n", "--verbose", env=env).stdout
    assert re.search(
        r"rule calibrate_003:\n\s*input: .*\n\s*output: .*calibration/encoder/encoder_calib_el_gr_0000.npy", full
    )


@pytest.mark.parametrize(
    "device, gpus, jobs, handed_down",
    [
        ("cpu", "0,1", 17, None),
        ("cuda", "", 1, None),
        ("cuda", "0,1", 1, None),
        ("cuda", "0,1,2,3", 2, None),
        ("cuda", "0,1", 4, "100"),
    ],
)
def test_samples_per_job_auto_follows_the_devices(tmp_path, device, gpus, jobs, handed_down):
    """auto: one language a job on CPU (at most 100 samples); where calibrate and label
    jobs hold a GPU, languages packed into jobs of the visible GPUs (at least one: a
    cluster's submit host sees none) shared by the two steps; a value already in the
    environment (a cluster job's parse, handed down from where the run started) wins
    over what this host sees."""
    cfg = tmp_path / "device.yaml"
    cfg.write_text(f"calibration: {{device: {device}, samples_per_job: auto}}\nlabels: {{device: {device}}}\n")
    env = offline_env(double=False, CUDA_VISIBLE_DEVICES=gpus)
    env.pop(jobs_module.AUTO_ENV, None)
    if handed_down:
        env[jobs_module.AUTO_ENV] = handed_down
    proc = snakemake(tmp_path, "-n", "-j8", "calibration", "labels", "--configfile", str(cfg), env=env)
    counts = _job_counts(proc.stdout)
    for step in ("calibrate", "label"):
        assert sorted(k for k in counts if k.startswith(step + "_")) == [f"{step}_{j:03d}" for j in range(jobs)]


def test_samples_per_job_splits_groups(tmp_path):
    cfg = tmp_path / "groups.yaml"
    cfg.write_text("samples_per_language: 10\ncalibration: {samples_per_job: 3}\n")
    proc = snakemake(tmp_path, "-n", "-j8", "calibration", "--configfile", str(cfg), env=offline_env(double=False))
    counts = _job_counts(proc.stdout)
    groups = [k for k in counts if k.startswith("calibrate_")]
    # one language a job: each language's 10 in jobs of 3, 3, 3, 1
    assert sorted(groups) == [f"calibrate_{j:03d}" for j in range(17 * 4)]


@pytest.mark.parametrize(
    "override, key",
    [
        ("samples_per_language: 0", "samples_per_language"),
        ("samples_per_language: 100000000", "samples_per_language"),
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
