"""Jobs running at once each take a GPU of their own (lock files; no GPU needed)."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import offline_env

CLAIM = (
    "import sys, time; from whisper_mxq import devices; "
    "print(devices.claim_gpu(int(sys.argv[1])), flush=True); time.sleep(float(sys.argv[2]))"
)


def _claim(count: int, hold: float, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(count), str(hold)], env=env, stdout=subprocess.PIPE, text=True
    )


def test_concurrent_jobs_claim_different_gpus_and_release_them(tmp_path):
    env = offline_env(WHISPER_MXQ_GPU_LOCKS=str(tmp_path), CUDA_VISIBLE_DEVICES="")
    first = _claim(2, 5, env)
    assert first.stdout.readline().strip() == "0"
    second = _claim(2, 5, env)
    assert second.stdout.readline().strip() == "1"  # the first GPU is held
    third = _claim(2, 0, env)
    assert third.stdout.readline().strip() == "0"  # all held: shares the first, no wait
    first.kill()
    first.wait()
    time.sleep(0.2)
    fourth = _claim(2, 0, env)
    assert fourth.stdout.readline().strip() == "0"  # released when its holder died
    for p in (second, third, fourth):
        p.kill()
        p.wait()


def test_locks_name_the_physical_gpu_behind_cuda_visible_devices(tmp_path):
    """Two jobs that see different GPUs as their first (SLURM gives each its own) do not
    block each other."""
    a = _claim(1, 5, offline_env(WHISPER_MXQ_GPU_LOCKS=str(tmp_path), CUDA_VISIBLE_DEVICES="2"))
    assert a.stdout.readline().strip() == "0"
    b = _claim(1, 0, offline_env(WHISPER_MXQ_GPU_LOCKS=str(tmp_path), CUDA_VISIBLE_DEVICES="3"))
    assert b.stdout.readline().strip() == "0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-2.lock", "gpu-3.lock"]
    for p in (a, b):
        p.kill()
        p.wait()
