"""What a run prints at its end, for a person: the clips it skipped (per language, with
the first reasons and the manifests that list them all) and, for the demo, the quality
verdicts per language, the plots and the HTML report.

    python -m whisper_mxq.summary <run folder> <model name> [--html report.html]
"""

from __future__ import annotations

import argparse
import os

from . import atomic, layout


def skipped_clips(manifests: dict[str, list[str]], shown: int = 2) -> str | None:
    """Per step ("calibration", "held-out") and language: clips kept and skipped, the
    first `shown` reasons and the manifests that list them all; None where nothing was
    skipped. Manifests not written (a target that needs no download) are left out."""
    lines = []
    for step, paths in manifests.items():
        by_lang: dict[str, dict] = {}
        for path in paths:
            if not os.path.isfile(path):
                continue
            try:
                languages = atomic.read_json(path)["languages"]
            except (ValueError, KeyError, TypeError) as e:  # a note, not the run's failure
                lines.append(f"  {path}: unreadable, its skips unknown ({e})")
                continue
            for lang, part in languages.items():
                entry = by_lang.setdefault(lang, {"kept": 0, "reasons": [], "files": []})
                entry["kept"] += len(part["samples"])
                if part["skipped"]:
                    entry["reasons"] += [s["reason"] for s in part["skipped"]]
                    entry["files"].append(path)
        for lang, entry in sorted(by_lang.items()):
            n = len(entry["reasons"])
            if not n:
                continue
            lines.append(
                f"  {step} {lang}: {entry['kept']} clips kept, {n} skipped (all in {', '.join(entry['files'])})"
            )
            lines += [f"    - {reason}" for reason in entry["reasons"][:shown]]
            if n > shown:
                lines.append(f"    - and {n - shown} more")
    if not lines:
        return None
    return "\n".join(["Clips skipped (each passed over, the next clip of its language taking its place):", *lines])


def _task(verdict: dict | None) -> str:
    if not verdict:
        return "-"
    return f"{verdict['verdict']} ({verdict['reason']})"


def quality(report_path: str, plots: list[str], html: str | None = None) -> str:
    """The quality report's verdicts per language and overall, then where to look."""
    report = atomic.read_json(report_path)
    lines = [f"INT8 against FP32 on held-out clips ({report_path}):"]
    for lang, entry in sorted(report["languages"].items()):
        tasks = entry.get("verdicts", {})
        lines.append(f"  {lang}: {entry['verdict']}")
        lines += [f"    {task}: {_task(tasks.get(task))}" for task in ("transcribe", "translate") if task in tasks]
    lines.append(f"  overall: {report['overall']['verdict']}")
    lines.append("Plots: " + ", ".join(plots))
    if html:
        lines.append(f"HTML report (plots, runtimes, the DAG): {html}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="the run folder (snakemake -d)")
    ap.add_argument("model", help="the model's name, as outputs are named")
    ap.add_argument("--html", default=None, help="the --report HTML file, where made")
    args = ap.parse_args(argv)
    report = os.path.join(args.run, layout.QUALITY.format(model=args.model))
    plots = [os.path.join(args.run, p.format(model=args.model)) for p in layout.QUALITY_PLOTS.values()]
    print(quality(report, plots, args.html))


if __name__ == "__main__":
    main()
