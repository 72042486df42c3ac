"""Fault injection for tests/test_faults.py, loaded by every Python process of a test run.

Put this folder on PYTHONPATH and Python imports it at start-up, in Snakemake and in
every job it launches; the workflow's own code has no test hooks. Inert unless one of
these variables is set:

- FAULT_DIR: folder for attempt counters and markers (required by the others).
- FAULT_FLEURS_FLAKY=en_us,...: the first FLEURS read of these languages fails as an
  unreachable network would; later attempts (Snakemake's retries) succeed.
- FAULT_FLEURS_DOWN=de_de,...: every FLEURS read of these languages fails.
- FAULT_HANG_ON_WRITE=<file name>[,<file name>...]: a process about to rename into
  place a file whose final name is one of these (an atomic writer's hidden temporary,
  written in full) touches $FAULT_DIR/hanging and sleeps, so the test can SIGKILL it
  mid-write. FAULT_HANG_AFTER=N lets the first N such renames of the process through
  (the order in which a job writes its files is its own business).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import time
from pathlib import Path


def _langs(var: str) -> set[str]:
    return {x for x in os.environ.get(var, "").split(",") if x}


def _attempt(lang: str) -> int:
    """Count FLEURS reads of one language across processes (one file line per read)."""
    counter = Path(os.environ["FAULT_DIR"]) / f"fleurs_reads_{lang}"
    with open(counter, "a") as f:
        f.write(f"{os.getpid()}\n")
    return len(counter.read_text().splitlines())


def _patch_data(module) -> None:
    stream_rows = module.stream_rows

    def flaky_stream_rows(source, lang, *args, **kwargs):
        attempt = _attempt(lang)
        if lang in _langs("FAULT_FLEURS_DOWN") or (lang in _langs("FAULT_FLEURS_FLAKY") and attempt == 1):
            raise ConnectionError(f"injected fault: FLEURS unreachable for {lang} (read {attempt})")
        return stream_rows(source, lang, *args, **kwargs)

    module.stream_rows = flaky_stream_rows


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patch whisper_mxq.data right after it is first imported."""

    def find_spec(self, name, path, target=None):
        if name != "whisper_mxq.data":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch_data(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _hang_before_rename(names: set[str], let_through: int) -> None:
    replace = os.replace
    seen = []

    def hanging_replace(src, dst, *args, **kwargs):
        # atomic.atomic_path's temporary: ".{final name}.{random}{suffix}", complete
        # and about to be renamed into place
        target = os.path.basename(os.fspath(src))
        if any(target.startswith(f".{name}.") for name in names):
            seen.append(target)
            if len(seen) > let_through:
                (Path(os.environ["FAULT_DIR"]) / "hanging").write_text(f"{os.getpid()} {target}\n")
                while True:
                    time.sleep(60)
        return replace(src, dst, *args, **kwargs)

    os.replace = hanging_replace


if os.environ.get("FAULT_DIR"):
    if _langs("FAULT_FLEURS_FLAKY") | _langs("FAULT_FLEURS_DOWN"):
        sys.meta_path.insert(0, _PatchOnImport())
    if os.environ.get("FAULT_HANG_ON_WRITE"):
        _hang_before_rename(_langs("FAULT_HANG_ON_WRITE"), int(os.environ.get("FAULT_HANG_AFTER", "0")))
