"""Where a calibrate job's fixed cost goes: the steps a fresh process takes before its
first batch, timed in order, in fresh processes; and whether starting CUDA on a thread
overlaps the imports and the weight load on the main thread (it only can where CUDA's
start releases the GIL).

    python tests/benchmarks/startup.py --model /tmp/rs/model --repeats 2

--model: a save_pretrained Whisper folder with its processor (race.py small leaves one
in its --workdir).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow"))


def steps(model: str, overlap: bool) -> dict:
    t0 = time.perf_counter()
    marks = {}

    def mark(name):
        marks[name] = round(time.perf_counter() - t0 - sum(marks.values()), 3)

    import torch

    mark("import torch")
    cuda = None
    if overlap:
        import threading

        cuda = threading.Thread(target=torch.cuda.init)
        cuda.start()
    from transformers import WhisperFeatureExtractor

    WhisperFeatureExtractor.from_pretrained(model)
    mark("feature extractor")
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    mark("import model classes")
    from whisper_mxq.models import _fp32

    m = WhisperForConditionalGeneration.from_pretrained(model, **_fp32()).eval()
    mark("weights (host)")
    if cuda is not None:
        cuda.join()
        mark("wait for CUDA start")
    else:
        torch.cuda.init()
        mark("CUDA start")
    m = m.to("cuda")
    torch.cuda.synchronize()
    mark("weights to the GPU")
    import copy

    copy.deepcopy(m).half()
    torch.cuda.synchronize()
    mark("fp16 copy")
    WhisperProcessor.from_pretrained(model)
    mark("processor")
    with torch.no_grad():
        m.get_encoder()(torch.zeros(1, m.config.num_mel_bins, 3000, device="cuda"))
    torch.cuda.synchronize()
    mark("first encoder forward")
    marks["total"] = round(time.perf_counter() - t0, 3)
    return marks


def main() -> None:
    if sys.argv[1:2] == ["_run"]:
        print("RESULT " + json.dumps(steps(sys.argv[2], sys.argv[3] == "1")))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    for r in range(args.repeats):
        for overlap in (False, True) if r % 2 == 0 else (True, False):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "_run", args.model, str(int(overlap))],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            wall = time.perf_counter() - t0
            marks = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
            name = "CUDA start on a thread" if overlap else "in order"
            print(f"{name}: process {wall:.2f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in marks.items()), flush=True)


if __name__ == "__main__":
    main()
