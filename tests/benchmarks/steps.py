"""Where one calibrate job's time goes: each stage of a calibrate job timed on its own,
in one process, on the race's whisper-small-shaped model (random weights, every decode
exactly --tokens long), after one warm-up pass of each.

    python tests/benchmarks/steps.py --clips 64 --batches 16 64 [--processor DIR]

Stages: feature extraction (CPU, per clip, as calibrate_encoder does it), encoder
forward, greedy decode (decoding.greedy: fp32 with and without CUDA graphs, fp16) and,
for comparison, transformers' Whisper `generate` from the same encoder states (and
whether both pick the same ids); the copy to the host; the writes of the encoder
states files. Prints ms per batch and the clips/s each stage alone would allow.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import race


def timed(fn, device: str, repeats: int = 2) -> float:
    import torch

    fn()  # warm-up: kernels, allocator, caches
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--processor", default=None)
    ap.add_argument("--generate", action="store_true", help="also time transformers' generate")
    args = ap.parse_args()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    import numpy as np
    import torch
    from transformers import WhisperFeatureExtractor

    from whisper_mxq import atomic, audio, decoder_calibration, encoder_calibration, models

    from calib_helpers import greedy_once

    device = "cuda" if torch.cuda.is_available() else "cpu"
    work = Path(tempfile.mkdtemp(prefix="steps."))
    wavs = race.synthetic_clips(work / "clips", args.clips, ["de_de"])
    snapshot = race.small_model(work / "model", args.processor)
    fe = WhisperFeatureExtractor.from_pretrained(snapshot, local_files_only=True)
    clips = [audio.load(w) for w in wavs]
    print(
        f"device {torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}, torch {torch.__version__}, "
        f"cpus {os.cpu_count()}, {args.clips} clips, {args.tokens} tokens",
        flush=True,
    )

    t = timed(lambda: [encoder_calibration.encoder_features(fe, c) for c in clips], "cpu", 1)
    print(
        f"features (CPU, one clip at a time): {t / len(clips) * 1000:.1f} ms/clip, {len(clips) / t:.1f} clips/s alone",
        flush=True,
    )
    feats_np = np.concatenate([encoder_calibration.encoder_features(fe, c) for c in clips])

    model = models.load_model(snapshot, device)
    half = decoder_calibration.generation_model(model, "fp16") if device == "cuda" else None
    tok = models.load_processor(snapshot).tokenizer
    prompt = decoder_calibration.prompt(tok, "de", "transcribe", True).ids
    if max(args.batches) > args.clips:
        raise SystemExit(f"--clips {args.clips} is smaller than batch {max(args.batches)}")
    for b in args.batches:
        feats = torch.from_numpy(feats_np[:b]).transpose(1, 2).contiguous().to(device)
        enc = timed(lambda: _encode(model, feats), device)
        states = _encode(model, feats)
        row = {"encoder": enc}
        row["greedy fp32"] = timed(lambda: greedy_once(model, states, prompt, args.tokens), device)
        if device == "cuda":
            row["greedy fp32 no graphs"] = timed(
                lambda: greedy_once(model, states, prompt, args.tokens, graphs=False), device
            )
            row["greedy fp16"] = timed(lambda: greedy_once(half, states, prompt, args.tokens), device)
        if args.generate:
            row["generate fp32"] = timed(lambda: race.generate_ids(model, states, prompt, args.tokens), device, 1)
            want = race.generate_ids(model, states, prompt, args.tokens)
            got = greedy_once(model, states, prompt, args.tokens)
            same = sum(w == g[: len(w)] for w, g in zip(want, got))
            print(f"batch {b}: greedy vs generate, fp32: identical token ids {same}/{b}", flush=True)
        row["to host"] = timed(lambda: states.float().cpu().numpy(), device)
        host = states.float().cpu().numpy()
        with tempfile.TemporaryDirectory(dir=work) as out:
            row["write"] = timed(
                lambda: [atomic.write_npy(f"{out}/{i}.npy", host[i : i + 1]) for i in range(b)], "cpu", 1
            )
        cells = ", ".join(f"{k} {v * 1000:.0f} ms ({b / v:.0f} clips/s)" for k, v in row.items())
        print(f"batch {b}: {cells}", flush=True)
        print(
            f"  per decode step: greedy fp32 {row['greedy fp32'] / args.tokens * 1000:.2f} ms"
            + (f", generate {row['generate fp32'] / args.tokens * 1000:.2f} ms" if args.generate else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()


def _encode(model, feats):
    """The calibrate job's fp32 encoder pass: [B, n_mels, frames] -> last hidden state."""
    import torch

    with torch.no_grad():
        return model.get_encoder()(feats).last_hidden_state
