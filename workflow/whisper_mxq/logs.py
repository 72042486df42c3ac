"""Send a job's output to its Snakemake log file."""

from __future__ import annotations

import logging
import sys


def to_file(log_paths) -> None:
    """Point stdout, stderr and `logging` at the rule's `log:` file (if it has one)."""
    if not log_paths:
        return
    stream = open(log_paths[0], "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
