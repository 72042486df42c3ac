"""Reports the aggregate steps write: what went into calibration and what was skipped."""

from __future__ import annotations

from collections import Counter

from . import atomic


def write_calibration_report(manifest_paths: list[str], decoder_calib: dict, out_path: str) -> dict:
    """Per language: clips used, clips skipped at download with their reasons; overall:
    the transcribe/translate mix. Nothing is dropped without a line here."""
    languages = {}
    for path in manifest_paths:
        manifest = atomic.read_json(path)
        languages[manifest["language"]] = {
            "used": len(manifest["samples"]),
            "skipped": manifest["skipped"],
        }
    tasks = Counter(m["task_type"] for m in decoder_calib["metadata"])
    report = {
        "samples": len(decoder_calib["metadata"]),
        "task_types": dict(sorted(tasks.items())),
        "languages": languages,
    }
    atomic.write_json(out_path, report)
    return report
