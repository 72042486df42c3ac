"""The label step against openai-whisper's own use, on one checkpoint, in one process:

load      whisper.load_model (fp32 built on the CPU, random init, then the weights)
          against labels.load_openai_whisper (built on the device, fp16)
loop      the tutorial's loop: model.transcribe per clip, transcribe then translate
          (temperature 0, no fallback, no timestamps, --tokens at most), clips/s
agree     the label job's batched decode against openai-whisper's one clip at a time
          with load_model's model: clips whose two texts are identical

  labels_check.py --model M.pt --wavs DIR --lang de_de --loop-clips 8 --agree-clips 16
"""

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "workflow"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--wavs", required=True)
    ap.add_argument("--lang", default="de_de")
    ap.add_argument("--loop-clips", type=int, default=8)
    ap.add_argument("--agree-clips", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch
    import whisper

    from whisper_mxq import audio, labels
    from whisper_mxq.languages import whisper_code

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    res = {"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu"}
    wavs = sorted(glob.glob(os.path.join(args.wavs, f"{args.lang}_*.wav")))
    code = whisper_code(args.lang)

    t = time.perf_counter()
    reference = whisper.load_model(args.model, device=dev)
    sync()
    res["load_model_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ours = labels.load_openai_whisper(args.model, dev)
    sync()
    res["load_openai_whisper_fp16_s"] = time.perf_counter() - t

    # the tutorial's loop, with openai-whisper's own model
    def tutorial_step(path: str, task: str) -> None:
        reference.transcribe(
            audio.load(path),
            language=code,
            task=task,
            temperature=0.0,
            without_timestamps=True,
            sample_len=args.tokens,
            condition_on_previous_text=False,
            fp16=dev == "cuda",
            verbose=None,
        )

    n = min(args.loop_clips, len(wavs))
    tutorial_step(wavs[0], "transcribe")  # warm-up
    sync()
    t = time.perf_counter()
    for p in wavs[:n]:
        for task in ("transcribe", "translate"):
            tutorial_step(p, task)
    sync()
    res["tutorial_loop_clips_per_s"] = n / (time.perf_counter() - t)

    # agreement: the job's batched path vs one clip at a time with load_model's model
    m = min(args.agree_clips, len(wavs))
    clips = [audio.load(p) for p in wavs[:m]]
    mel = labels._openai_mel(args.model)
    encode, decode = labels._openai_decoder(ours)
    batched = decode(encode(torch.stack([mel(c) for c in clips])), [code] * m, "transcribe", args.tokens)
    no_timestamps = whisper.tokenizer.get_tokenizer(True, num_languages=reference.num_languages).no_timestamps
    options = whisper.DecodingOptions(
        language=code,
        task="transcribe",
        without_timestamps=True,
        fp16=dev == "cuda",
        sample_len=args.tokens,
        suppress_tokens=[-1, no_timestamps],
    )
    single = [whisper.decode(reference, mel(c).to(dev), options).text.strip() for c in clips]
    res["agree_identical_texts"] = f"{sum(a == b for a, b in zip(batched, single))}/{m}"
    res["agree_first"] = [batched[0][:60], single[0][:60]]
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
