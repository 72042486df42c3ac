"""How samples are packed into jobs: one scheme for downloads, labels and calibration.

Every sample, in the fixed order of the calibration lists (language, then index), is
cut into consecutive jobs of at most `samples_per_job`. Job `003` downloads its clips,
labels them and calibrates them: one job name across the three steps, so a job's files
move through the DAG together and each model is loaded once per job, not once per sample.

A job holds one language, or part of a large one: a change in one language's source
reruns that language's jobs and the aggregates, never another language's. Packed
(`calibration.pack_languages`), a job may hold several small languages: fewer job
starts, which is what counts on a GPU, but a change in one language reruns its
pack-mates too. A job's download continues a language where the job before it stopped
(a bad clip is skipped and the next one takes its place, so where a job starts in the
source depends on the one before).

Pure functions: the Snakefile plans with them while parsing, so nothing here imports
torch or touches a GPU.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass

from . import layout

# `samples_per_job: auto`. A job pays a fixed start (process, torch and transformers
# imports, model loads: ~4.5 s on 2 CPU cores, ~15 s on the H200 host measured) for
# ~1/30 s a sample on a GPU and seconds a sample on a CPU. On CPUs, jobs of 100 keep the
# cores of a machine or cluster busy. On GPUs the label and calibrate steps run side by
# side, so each step gets one job per two GPUs: on two GPUs one label job and one
# calibrate job at once (measured faster than two of each, whose extra starts cost more
# than the split saves at a thousand clips). Each job holds at most GPU_JOB_CAP samples,
# so a very large set still makes jobs of a few minutes.
CPU_SAMPLES_PER_JOB = 100
GPU_JOB_CAP = 2000
# `auto` is resolved once, where the run starts, and handed down in the environment:
# cluster jobs parse the Snakefile again on a node that may see other GPUs (or none),
# and the plan must be the same there.
AUTO_ENV = "WHISPER_MXQ_SAMPLES_PER_JOB"


@dataclass(frozen=True)
class Slice:
    """Samples `start` .. `stop - 1` of one language."""

    lang: str
    start: int
    stop: int

    @property
    def samples(self) -> list[str]:
        return [layout.sample_id(self.lang, i) for i in range(self.start, self.stop)]


@dataclass(frozen=True)
class Job:
    name: str
    slices: tuple[Slice, ...]

    @property
    def samples(self) -> list[str]:
        return [s for part in self.slices for s in part.samples]

    @property
    def languages(self) -> list[str]:
        return [part.lang for part in self.slices]


def plan(languages: list[str], per_language: int, per_job: int, pack: bool = False) -> list[Job]:
    """Jobs of at most `per_job` samples, one language each (a language's samples cut in
    consecutive runs), or packed: consecutive runs of `per_job` over (language, index)
    across languages. Adding languages at the end of the list leaves the earlier jobs as
    they were."""
    if per_language < 1 or per_job < 1:
        raise ValueError(f"per_language {per_language} and per_job {per_job} must be positive")
    if not pack:
        cuts = [(lang, start) for lang in languages for start in range(0, per_language, per_job)]
        width = max(3, len(str(len(cuts) - 1)))
        return [
            Job(f"{j:0{width}d}", (Slice(lang, start, min(start + per_job, per_language)),))
            for j, (lang, start) in enumerate(cuts)
        ]
    total = len(languages) * per_language
    n_jobs = math.ceil(total / per_job)
    width = max(3, len(str(n_jobs - 1)))
    jobs = []
    for j in range(n_jobs):
        first, last = j * per_job, min((j + 1) * per_job, total)  # global sample positions
        slices = []
        for k in range(first // per_language, (last - 1) // per_language + 1):
            start = max(first - k * per_language, 0)
            stop = min(last - k * per_language, per_language)
            slices.append(Slice(languages[k], start, stop))
        jobs.append(Job(f"{j:0{width}d}", tuple(slices)))
    return jobs


def previous(jobs: list[Job], part: Slice) -> Job | None:
    """The job holding the sample just before `part` in its language: where its
    download stopped is where this one continues. None for a language's first slice."""
    if part.start == 0:
        return None
    return next(j for j in jobs if any(p.lang == part.lang and p.start < part.start <= p.stop for p in j.slices))


# --- samples_per_job: auto -------------------------------------------------------------
def visible_gpus() -> int:
    """GPUs this machine shows: CUDA_VISIBLE_DEVICES when set, else `nvidia-smi -L`.
    Asked without torch, which would cost every parse of the Snakefile seconds."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def jobs_at_once(gpus: int, gpu_steps: int) -> int:
    """How many jobs of one step should run at once: 0 where the steps run on CPUs,
    else the GPUs shared among the steps that use them (at least one job)."""
    if gpu_steps < 1:
        return 0
    return max(1, round(gpus / gpu_steps))


def auto_samples_per_job(total: int, at_once: int) -> int:
    """`at_once` jobs of a step at a time (at most GPU_JOB_CAP samples each, in as many
    rounds as that takes, all rounds the same size); CPU_SAMPLES_PER_JOB on CPUs."""
    if at_once < 1:
        return CPU_SAMPLES_PER_JOB
    rounds = math.ceil(total / (at_once * GPU_JOB_CAP))
    return max(1, math.ceil(total / (at_once * rounds)))


def samples_per_job(setting: int | str, total: int, at_once: int) -> int:
    """The configured number, or `auto` resolved once per run (see AUTO_ENV)."""
    if setting != "auto":
        return int(setting)
    if AUTO_ENV not in os.environ:
        os.environ[AUTO_ENV] = str(auto_samples_per_job(total, at_once))
    return int(os.environ[AUTO_ENV])
