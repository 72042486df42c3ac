"""Where a calibrate job's start goes: the steps a fresh process takes before its first
batch, timed in order, each run in a fresh process. Two ways, alternating:
`network`, what the calibrate job does (whisper_mxq.network: no transformers model
classes; the tokenizer alone), and `transformers`, what it did before
(WhisperForConditionalGeneration and WhisperProcessor).

    python tests/benchmarks/startup.py --model /tmp/rs/model --repeats 3 [--device cpu]

--model: a save_pretrained Whisper folder with its processor (race.py small leaves one
in its --workdir; the offline demo's models/ holds one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow"))


def steps(model: str, way: str, device: str) -> dict:
    t0 = time.perf_counter()
    marks = {}

    def mark(name):
        marks[name] = round(time.perf_counter() - t0 - sum(marks.values()), 3)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    import torch

    mark("import torch")
    from whisper_mxq import encoder_calibration, models

    encoder_calibration.feature_extractor(model)
    mark("feature extractor")
    if device.startswith("cuda"):
        torch.cuda.init()
        mark("CUDA start")
    if way == "network":
        from whisper_mxq import network

        m = network.load(model, device)
        sync()
        mark("weights")
        models.load_tokenizer(model)
        mark("tokenizer")
    else:
        from transformers import WhisperForConditionalGeneration, WhisperProcessor  # noqa: F401

        mark("import model classes")
        m = models.load_model(model, device)
        sync()
        mark("weights")
        WhisperProcessor.from_pretrained(model)
        mark("processor")
    import copy

    copy.deepcopy(m).half() if device.startswith("cuda") else m
    sync()
    mark("fp16 copy")
    with torch.no_grad():
        m.get_encoder()(torch.zeros(1, m.config.num_mel_bins, 3000, device=device))
    sync()
    mark("first encoder forward")
    marks["total"] = round(time.perf_counter() - t0, 3)
    return marks


def main() -> None:
    if sys.argv[1:2] == ["_run"]:
        print("RESULT " + json.dumps(steps(*sys.argv[2:5])))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    for r in range(args.repeats):
        for way in ("network", "transformers") if r % 2 == 0 else ("transformers", "network"):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "_run", args.model, way, args.device],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            wall = time.perf_counter() - t0
            marks = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
            print(f"{way}: process {wall:.2f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in marks.items()), flush=True)


if __name__ == "__main__":
    main()
