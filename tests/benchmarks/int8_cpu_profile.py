"""Where ONNX Runtime's CPU time goes in the FP32 and INT8 encoders of a finished
quality run: ORT's own profiler, kernel time per operator type, on the run's first
calibration clip (the graphs and session settings the report's latency uses).

    python tests/benchmarks/int8_cpu_profile.py RUN_DIR MODEL [--threads 2] [--runs 3]

e.g. `python tests/benchmarks/int8_cpu_profile.py /tmp/run whisper-base`. Prints one
JSON object: per graph, wall ms per run (median) and kernel ms per op type.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path


def profile(graph: Path, features, threads: int, runs: int) -> dict:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.enable_profiling, opts.profile_file_prefix = True, str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        sess.run(None, {name: features})  # warm-up, in the profile too: subtracted below
        walls = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, {name: features})
            walls.append((time.perf_counter() - t0) * 1000)
        events = json.loads(Path(sess.end_profiling()).read_text())
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_op: collections.Counter = collections.Counter()
    for e in kernels:
        per_op[e["args"]["op_name"]] += e["dur"] / 1000 / (runs + 1)  # µs -> ms, per run
    total = sum(per_op.values())
    return {
        "wall_ms_median": round(statistics.median(walls), 1),
        "kernel_ms": round(total, 1),
        "by_op": {op: {"ms": round(ms, 1), "share": round(ms / total, 3)} for op, ms in per_op.most_common()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import numpy as np

    listed = (args.run_dir / "calibration/encoder/whisper_encoder_cali.txt").read_text().split()
    first = Path(listed[0]) if Path(listed[0]).is_absolute() else args.run_dir / listed[0]
    features = np.load(first, allow_pickle=False)
    out = {}
    for label, name in (("fp32", f"{args.model}_encoder.onnx"), ("int8", f"{args.model}_encoder.int8.onnx")):
        out[label] = profile(args.run_dir / "compiled" / name, features, args.threads, args.runs)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
