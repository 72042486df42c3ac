"""The calibrate job's decoder against transformers' own: static-cache `generate`, with and
without torch.compile, in the real calibrate job, each run in a process of its own
(start-up, model load and compilation included).

    python tests/benchmarks/decoders.py --snapshot DIR --wavs-from RUN_DIR --clips 1000 \
        --decoders greedy,static,static-compile --out results.jsonl
    python tests/benchmarks/decoders.py --check --snapshot DIR --wavs-from RUN_DIR --clips 8

--check compares the token ids of each decoder with decoding.Greedy's on the same clips
(fp32) and fails on any difference. `generate` here is transformers' GenerationMixin
itself (Whisper's own generate takes one task per batch, where a calibrate batch mixes
languages and tasks, one prompt a row): prompts as decoder_input_ids, the generation
config's suppress_tokens and begin_suppress_tokens, a static key/value cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))


class GenerateDecoder:
    """decoding.Greedy's interface on transformers' generate with a static cache."""

    def __init__(self, model, max_new_tokens: int, compile: bool):
        self.model, self.max_new_tokens, self.compile = model, max_new_tokens, compile

    def __call__(self, states, prompts: list[list[int]]) -> list[list[int]]:
        import torch
        from transformers import GenerationMixin
        from transformers.modeling_outputs import BaseModelOutput

        gen = self.model.generation_config
        eot = gen.eos_token_id[0] if isinstance(gen.eos_token_id, list) else gen.eos_token_id
        ids = torch.tensor(prompts, dtype=torch.long, device=states.device)
        steps = min(self.max_new_tokens, self.model.config.max_target_positions - ids.shape[1])
        with torch.no_grad():
            out = GenerationMixin.generate(
                self.model,
                encoder_outputs=BaseModelOutput(last_hidden_state=states.to(self.model.dtype)),
                decoder_input_ids=ids,
                max_new_tokens=steps,
                min_new_tokens=None,
                do_sample=False,
                num_beams=1,
                cache_implementation="static",
                disable_compile=not self.compile,
                suppress_tokens=gen.suppress_tokens,
                begin_suppress_tokens=gen.begin_suppress_tokens,
                eos_token_id=eot,
                pad_token_id=eot,
            )
        new = out[:, ids.shape[1] :].tolist()
        return [row + [eot] * (steps - len(row)) for row in new]


def _job(args) -> None:
    """One calibrate job with the chosen decoder (the child process)."""
    import torch

    from whisper_mxq import calibration, decoding, devices

    from calib_helpers import calib_settings, manifest_for

    if args.decoder != "greedy":
        compile_ = args.decoder == "static-compile"
        decoding.Greedy = lambda model, n, graphs=None: GenerateDecoder(model, n, compile_)  # noqa: E731
    wavs = json.loads(Path(args.wavs_file).read_text())
    samples = [Path(w).stem for w in wavs]
    out = Path(args.workdir)
    manifest, stamp = manifest_for(wavs, out)
    t = time.perf_counter()
    calibration.calibrate_job(
        args.snapshot,
        manifest,
        stamp,
        [str(out / f"enc/{s}.npy") for s in samples],
        [str(out / f"dec/{s}") for s in samples],
        str(out / "summary.json"),
        calib_settings(max_new_tokens=args.tokens, batch_size=args.batch, dtype=args.dtype),
        device=devices.pick(args.device),
        threads=args.threads,
    )
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0
    print(json.dumps({"job_s": time.perf_counter() - t, "gpu_peak_mib": peak}), flush=True)


def _wavs(run_dir: str, n: int) -> list[str]:
    clips = sorted(Path(run_dir, "data/audio_files").glob("*.wav"))
    if len(clips) < n:
        raise SystemExit(f"{run_dir} has {len(clips)} clips, {n} asked for")
    return [str(c) for c in clips[:n]]


def run(decoder: str, args, wavs: list[str], workdir: str) -> dict:
    wavs_file = Path(workdir, "wavs.json")
    wavs_file.write_text(json.dumps(wavs))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--decoder",
        decoder,
        "--snapshot",
        args.snapshot,
        "--wavs-file",
        str(wavs_file),
        "--workdir",
        workdir,
        "--tokens",
        str(args.tokens),
        "--batch",
        str(args.batch),
        "--dtype",
        args.dtype,
        "--device",
        args.device,
        "--threads",
        str(args.threads),
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        return {"decoder": decoder, "error": proc.stderr[-2000:]}
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"decoder": decoder, "clips": len(wavs), "wall_s": wall, "clips_per_s": len(wavs) / wall, **child}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--wavs-from")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--decoders", default="greedy,static,static-compile")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batch", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--decoder")
    ap.add_argument("--wavs-file")
    ap.add_argument("--workdir")
    args = ap.parse_args()
    args.batch = args.batch if args.batch == "auto" else int(args.batch)
    if args.child:
        return _job(args)
    wavs = _wavs(args.wavs_from, args.clips)
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for decoder in args.decoders.split(","):
            os.makedirs(f"{tmp}/{decoder}")
            results[decoder] = run(decoder, args, wavs, f"{tmp}/{decoder}")
            print(json.dumps(results[decoder]), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(results[decoder]) + "\n")
        if args.check:
            ids = {
                d: [e["token_ids"] for e in json.loads(Path(tmp, d, "summary.json").read_text())["samples"]]
                for d in results
                if "error" not in results[d]
            }
            for d, got in ids.items():
                same = sum(a == b for a, b in zip(got, ids["greedy"]))
                print(f"{d}: {same}/{len(got)} samples with greedy's token ids")
                if same != len(got):
                    raise SystemExit(f"{d} decodes differently from decoding.Greedy")


if __name__ == "__main__":
    main()
