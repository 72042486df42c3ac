"""Load a runtime bundle with Mobilint's own client, the NPU calls recorded.

Runs in the runtime environment (tests/runtime/make_env.sh: transformers-mblt and
mobilint-qb-runtime from PyPI, transformers < 5.18), not the workflow's:

    python check_bundle.py BUNDLE REFERENCE_SNAPSHOT OUT_JSON

Loads BUNDLE as its users do (`AutoConfig` / `AutoModelForSpeechSeq2Seq.from_pretrained(
..., trust_remote_code=True)`, `generate()`, the ASR pipeline), with qbruntime's device
calls replaced by npu_recorder's stand-ins computing with REFERENCE_SNAPSHOT's float
model, and writes what it saw to OUT_JSON: the runtime's reading of the config, the
recorded NPU calls, and the tokens and text next to the float model's own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import npu_recorder  # noqa: E402

PARTS = ("encoder", "decoder")
KEYS = ("mxq_path", "core_mode", "target_cores", "target_clusters", "target_device", "dev_no")


def audio() -> np.ndarray:
    """Two seconds of a chirp: any 16 kHz waveform the feature extractor takes."""
    t = np.arange(32000, dtype=np.float32) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


def runtime_config(bundle: str) -> dict:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(bundle, trust_remote_code=True)
    return {"class": type(config).__name__, **{f"{p}_{k}": getattr(config, f"{p}_{k}") for p in PARTS for k in KEYS}}


def generate(model, processor, kwargs: dict) -> list[int]:
    import torch

    features = processor.feature_extractor(audio(), sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        return model.generate(features, **kwargs)[0].tolist()


def main(bundle: str, reference: str, out: str) -> None:
    import transformers
    from transformers import AutoModelForSpeechSeq2Seq, WhisperForConditionalGeneration, WhisperProcessor, pipeline

    npu_recorder.install(reference)
    result = {"transformers": transformers.__version__, "config": runtime_config(bundle)}
    model = AutoModelForSpeechSeq2Seq.from_pretrained(bundle, trust_remote_code=True)
    float_model = WhisperForConditionalGeneration.from_pretrained(reference).eval()
    processor = WhisperProcessor.from_pretrained(bundle)
    greedy = {"max_new_tokens": 8, "do_sample": False, "num_beams": 1, "language": "de", "task": "transcribe"}
    result["model_class"] = type(model).__name__
    result["generate"] = {"npu": generate(model, processor, greedy), "float": generate(float_model, processor, greedy)}
    npu_recorder.CALLS.append({"call": "-- pipeline --"})
    beams = {"max_new_tokens": 8, "num_beams": 3, "language": "de", "task": "transcribe"}
    asr = pipeline("automatic-speech-recognition", model=bundle, trust_remote_code=True)
    reference_asr = pipeline(
        "automatic-speech-recognition",
        model=float_model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )
    result["pipeline"] = {
        "feature_extractor": type(asr.feature_extractor).__name__,
        "npu": asr(audio(), generate_kwargs=beams)["text"],
        "float": reference_asr(audio(), generate_kwargs=beams)["text"],
    }
    result["calls"] = npu_recorder.CALLS
    Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
