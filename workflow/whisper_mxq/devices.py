"""Which device a job runs on, and a GPU of its own when several jobs run at once.

Snakemake counts GPU slots (`--resources gpu=N`) but does not say which GPU a job
should use; left alone, every job would pick `cuda:0`. A job asking for `cuda` (or
`auto` with GPUs present) therefore claims the first GPU no other job holds: an
exclusive lock file per GPU, held for the life of the process and released by the
kernel when it ends, however it ends. With more jobs than GPUs (say `gpu=2` on one GPU,
to overlap one job's start-up with another's work), a job finding every GPU held
shares cuda:0 rather than wait.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile

log = logging.getLogger(__name__)

LOCK_DIR_ENV = "WHISPER_MXQ_GPU_LOCKS"  # where the per-GPU lock files live
_held: list = []  # open lock files: a lock lasts as long as its file stays open


def _lock_dir() -> str:
    # one folder per user: another user's folder would refuse this user's lock files
    return os.environ.get(LOCK_DIR_ENV) or os.path.join(tempfile.gettempdir(), f"whisper-mxq-gpu-locks-{os.getuid()}")


def _gpu_key(index: int) -> str:
    """A name for GPU `index` that other processes agree on: the physical device behind
    CUDA_VISIBLE_DEVICES (a UUID or an index), else the index itself."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        names = [v.strip() for v in visible.split(",") if v.strip()]
        if index < len(names):
            return names[index].replace("/", "_")
    return str(index)


def claim_gpu(count: int) -> int:
    """Index (among the visible GPUs) of a GPU this process now holds alone, or 0 when
    every one is held (then shared)."""
    os.makedirs(_lock_dir(), exist_ok=True)
    for index in range(count):
        f = open(os.path.join(_lock_dir(), f"gpu-{_gpu_key(index)}.lock"), "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        _held.append(f)
        return index
    log.info("all %d GPUs are held by other jobs: sharing cuda:0", count)
    return 0


def pick(requested: str) -> str:
    """`auto` -> a GPU when there is one, else the CPU; `cuda` -> a GPU of this job's own
    (claim_gpu); `cuda:N` and `cpu` as given."""
    if requested == "cpu" or requested.startswith("cuda:"):
        return requested
    import torch

    if not torch.cuda.is_available():
        if requested == "cuda":
            raise RuntimeError("device 'cuda' was asked for, but torch sees no CUDA GPU")
        return "cpu"
    index = claim_gpu(torch.cuda.device_count())
    torch.cuda.set_device(index)
    log.info("running on cuda:%d", index)
    return f"cuda:{index}"


def isolate(requested: str) -> None:
    """For a job whose GPU work runs in a library that picks its own device (qbcompiler):
    claim a GPU of this job's own and make it the only one visible, before the library
    starts CUDA. `cpu` and `cuda:N` leave the environment as it is."""
    from .jobs import visible_gpus

    if requested not in ("cuda", "gpu", "auto"):
        return
    count = visible_gpus()
    if count < 2:
        return
    index = claim_gpu(count)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [v.strip() for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(count)]
    os.environ["CUDA_VISIBLE_DEVICES"] = names[index]
    log.info("running on GPU %s alone", names[index])
