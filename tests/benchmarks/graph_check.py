"""GPU check of decoding.greedy's CUDA-graph path, which CI (CPU only) never runs: on
every visible GPU, greedy with graphs against transformers' `generate` and against
greedy without graphs, and a Greedy kept across two batches (the graph captured on the
first replayed on the second's states, rows of two prompts) against a fresh eager run;
on the race's whisper-small-shaped random model.

    python tests/benchmarks/graph_check.py [--processor models/race-processor]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import race  # noqa: E402  (puts the package on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processor", default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=16)
    args = ap.parse_args()

    import torch

    from whisper_mxq import decoder_calibration, decoding, models

    from calib_helpers import greedy_once

    snapshot = race.small_model(Path(tempfile.mkdtemp(prefix="graph_check.")) / "model", args.processor)
    tok = models.load_processor(snapshot).tokenizer
    prompt = decoder_calibration.prompt(tok, "de", "transcribe", True).ids
    failed = False
    for index in range(torch.cuda.device_count()):
        device = f"cuda:{index}"
        model = models.load_model(snapshot, device)
        torch.manual_seed(0)
        states = _encode(model, torch.randn(args.batch, 80, 3000, device=device))
        want = race.generate_ids(model, states, prompt, args.tokens)
        graph = greedy_once(model, states, prompt, args.tokens, graphs=True)
        eager = greedy_once(model, states, prompt, args.tokens, graphs=False)
        same = sum(w == g[: len(w)] for w, g in zip(want, graph))
        print(f"{device}: graph == generate {same}/{args.batch}, graph == no graph {graph == eager}", flush=True)
        failed |= same != args.batch or graph != eager
        kept = decoding.Greedy(model, args.tokens, graphs=True)
        kept(states, [prompt] * args.batch)
        other = _encode(model, torch.randn(args.batch, 80, 3000, device=device))
        french = decoder_calibration.prompt(tok, "fr", "translate", True).ids
        mixed = [prompt if row % 2 else french for row in range(args.batch)]
        reused = kept(other, mixed)
        fresh = decoding.Greedy(model, args.tokens, graphs=False)(other, mixed)
        print(
            f"{device}: graph reused on other states and prompts == no graph {reused == fresh}, "
            f"differs from the first batch {reused != graph}",
            flush=True,
        )
        failed |= reused != fresh or reused == graph
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()


def _encode(model, feats):
    """The calibrate job's fp32 encoder pass: [B, n_mels, frames] -> last hidden state."""
    import torch

    with torch.no_grad():
        return model.get_encoder()(feats).last_hidden_state
