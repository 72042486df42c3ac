"""Figures of the GPU end-to-end run: per run (one, two GPUs) the wall time of the
snakemake command, each step's span in it (from Snakemake's benchmark files: first job
start to last job end) and clips/s, the jobs' own time splits, GPU memory and
utilisation per step; the decoders' race and the label checks.

    summarize.py ROOT    -> ROOT/summary.json, a text summary on stdout
"""

import collections
import csv
import glob
import json
import os
import re
import statistics
import sys


def step_of(rule: str) -> str:
    return re.sub(r"_\d{3,}$", "", rule)


def run_summary(d: str) -> dict:
    s = json.load(open(f"{d}/wall.json")) if os.path.exists(f"{d}/wall.json") else {}
    run = f"{d}/run"
    clips = len(glob.glob(f"{run}/data/audio_files/*.wav"))
    s["clips"] = clips
    # Snakemake's per-job benchmark: wall seconds and the job's end time; the job log's
    # first line gives its start
    steps = collections.defaultdict(list)
    for tsv in glob.glob(f"{run}/benchmarks/*/*.tsv"):
        rows = list(csv.DictReader(open(tsv), delimiter="\t"))
        if rows:
            steps[os.path.basename(os.path.dirname(tsv))].append(
                {"s": float(rows[-1]["s"]), "end": os.path.getmtime(tsv), "max_rss_mb": rows[-1].get("max_rss")}
            )
    started = os.path.getmtime(f"{d}/cmd") if os.path.exists(f"{d}/cmd") else None
    s["steps"] = {}
    for step, jobs in steps.items():
        first_start = min(j["end"] - j["s"] for j in jobs)
        last_end = max(j["end"] for j in jobs)
        span = last_end - first_start
        s["steps"][step] = {
            "jobs": len(jobs),
            "job_s": [round(j["s"], 1) for j in jobs],
            "span_s": round(span, 1),
            "from_start_s": round(first_start - started, 1) if started else None,
            "clips_per_s_over_span": round(clips / span, 2) if span and step in ("label", "calibrate") else None,
        }
    s["calibrate_logs"] = [
        line.strip()[-260:]
        for lg in sorted(glob.glob(f"{run}/logs/calibrate/*.log"))
        for line in open(lg)
        if "calibrated" in line
    ]
    s["label_logs"] = [
        line.strip()[-160:]
        for lg in sorted(glob.glob(f"{run}/logs/label/*.log"))
        for line in open(lg)
        if "labelling" in line or "running on" in line
    ]
    if os.path.exists(f"{d}/gpu.csv"):
        mem, util = collections.defaultdict(float), collections.defaultdict(list)
        for r in csv.DictReader(open(f"{d}/gpu.csv")):
            try:
                if r["tag"]:
                    key = f"{r['tag']}@gpu{r['gpu']}"
                    mem[key] = max(mem[key], float(r["proc_mib"]))
                    util[key].append(float(r["util_pct"]))
            except (ValueError, KeyError):
                pass
        s["gpu_peak_mib"] = {k: round(v) for k, v in mem.items()}
        s["gpu_mean_util_pct"] = {k: round(statistics.mean(v), 1) for k, v in util.items()}
    if s.get("wall_s"):
        s["clips_per_s_whole_run"] = round(clips / s["wall_s"], 2)
    return s


def main() -> None:
    root = sys.argv[1]
    out = {}
    for name in ("one", "two"):
        if os.path.isdir(f"{root}/{name}"):
            out[name] = run_summary(f"{root}/{name}")
    if "one" in out and "two" in out and out["one"].get("wall_s") and out["two"].get("wall_s"):
        out["two_over_one_wall"] = round(out["two"]["wall_s"] / out["one"]["wall_s"], 3)
    if os.path.exists(f"{root}/decoders.jsonl"):
        out["decoders"] = [json.loads(line) for line in open(f"{root}/decoders.jsonl")]
    if os.path.exists(f"{root}/labels.json"):
        out["labels_check"] = json.load(open(f"{root}/labels.json"))
    if os.path.exists(f"{root}/machine.txt"):
        out["machine"] = open(f"{root}/machine.txt").read()
    json.dump(out, open(f"{root}/summary.json", "w"), indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
