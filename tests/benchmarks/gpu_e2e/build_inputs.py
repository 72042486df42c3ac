"""Inputs of the GPU end-to-end run, built on the GPU machine (too big to carry).

    build_inputs.py hf     OUT_DIR --processor DIR [--tiny]
    build_inputs.py ow     OUT.pt  [--tiny]
    build_inputs.py fleurs OUT_DIR [--clips 59]

hf:     whisper-small's shape with random weights and the real multilingual processor
        (the race's model: end-of-text and every id above it suppressed, so every decode
        is max_new_tokens long). --tiny: d_model 64, one layer each (CPU rehearsal).
ow:     an openai-whisper checkpoint of large-v3's dimensions, random fp16 weights as the
        released checkpoints are; the end-of-text row of the token embedding zeroed, so
        its logit is 0 while the largest of 51865 random logits is far above it and no
        label decode ends before labels.max_tokens.
fleurs: FLEURS-layout Parquet of the 17 default languages (the demo's writers), synthetic
        16 kHz clips of 3-10 s: two tones, a slow AM and noise.
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests" / "benchmarks"))


def hf(args) -> None:
    import race

    race.small_model(Path(args.out), args.processor, tiny=args.tiny)


def ow(args) -> None:
    import torch
    from whisper.model import ModelDimensions, Whisper

    width, heads, layers = (64, 2, 1) if args.tiny else (1280, 20, 32)
    dims = ModelDimensions(
        n_mels=128,
        n_audio_ctx=1500,
        n_audio_state=width,
        n_audio_head=heads,
        n_audio_layer=layers,
        n_vocab=51866,
        n_text_ctx=448,
        n_text_state=width,
        n_text_head=heads,
        n_text_layer=layers,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"  # random init is fast there
    torch.manual_seed(0)
    with torch.device(device):
        model = Whisper(dims)
    with torch.no_grad():
        torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)  # torch.empty otherwise
        model.decoder.token_embedding.weight[50257].zero_()  # multilingual <|endoftext|>
    state = {k: v.half().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"dims": dims.__dict__, "model_state_dict": state}, buf)
    Path(args.out + ".tmp").write_bytes(buf.getbuffer())
    os.replace(args.out + ".tmp", args.out)


def fleurs(args) -> None:
    import numpy as np
    import soundfile as sf

    from whisper_mxq import demo
    from whisper_mxq.languages import DEFAULT_LANGUAGES

    for li, lang in enumerate(DEFAULT_LANGUAGES):
        rows = []
        for i in range(args.clips):
            rng = np.random.default_rng([li, i])
            n = int(16000 * rng.uniform(3.0, 10.0))
            t = np.arange(n) / 16000
            am = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
            x = am * (
                0.25 * np.sin(2 * np.pi * rng.uniform(120, 300) * t)
                + 0.1 * np.sin(2 * np.pi * rng.uniform(500, 2500) * t)
            )
            x += 0.03 * rng.standard_normal(n)
            buf = io.BytesIO()
            sf.write(buf, x.astype(np.float32), 16000, format="WAV", subtype="PCM_16")
            rows.append(demo.fleurs_row(lang, i, f"synthetic clip {i} of {lang}", buf.getvalue(), gender=i % 2))
        demo.write_fleurs_rows(os.path.join(args.out, lang, "validation", "0000.parquet"), rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["hf", "ow", "fleurs"])
    ap.add_argument("out")
    ap.add_argument("--processor")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--clips", type=int, default=59)
    args = ap.parse_args()
    t = time.perf_counter()
    {"hf": hf, "ow": ow, "fleurs": fleurs}[args.what](args)
    print(f"{args.what} -> {args.out} in {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
