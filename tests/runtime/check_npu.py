"""whisper_mxq.npu.NpuPath on a runtime bundle, the NPU calls recorded.

Runs in the runtime environment (tests/runtime/make_env.sh):

    python check_npu.py BUNDLE REFERENCE_SNAPSHOT DECODER_JSON SAMPLE ENCODER_NPY OUT_JSON

SAMPLE is a calibration sample listed in DECODER_JSON (the tutorial's
whisper_decoder_calib.json) and ENCODER_NPY its encoder input: the workflow's own files,
made by its transformers in its environment. NpuPath's encoder states and the
embeddings it feeds the decoder are compared with the sample's; its logits with the
float reference model's, teacher-forced on the sample's tokens.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "workflow")]
import npu_recorder  # noqa: E402


def calibration_sample(decoder_json: str, sample_id: str) -> tuple[Path, list[int]]:
    """The sample's folder and token ids, from the calibration JSON's metadata."""
    calib = json.loads(Path(decoder_json).read_text())
    for paths, meta in zip(calib["calib paths"], calib["metadata"]):
        folder = Path(paths[0]).parent
        if folder.name == f"sample_{sample_id}":
            return folder, meta["token_ids"]
    raise KeyError(f"{decoder_json} lists no sample {sample_id}")


def main(bundle: str, reference: str, decoder_json: str, sample_id: str, encoder_npy: str, out: str) -> None:
    import torch

    from whisper_mxq.npu import NpuPath, card_missing

    npu_recorder.install(reference)
    path = NpuPath(bundle)
    sample, ids = calibration_sample(decoder_json, sample_id)
    states = path.encode(np.load(encoder_npy))
    logits = path.logits(ids, states)
    fed = next(m for m in npu_recorder.StandInModel.instances if m.info["part"] == "decoder").history
    greedy_calls_before = len(npu_recorder.CALLS)
    again = path.logits(ids + [int(np.argmax(logits[-1]))], states)  # a greedy step: one more token
    greedy_calls = [c for c in npu_recorder.CALLS[greedy_calls_before:] if c["call"] == "infer"]
    ref = npu_recorder.StandInModel.reference
    with torch.no_grad():
        want = (
            ref(
                encoder_outputs=(torch.from_numpy(np.load(sample / "encoder_hidden_states.npy")),),
                decoder_input_ids=torch.tensor([ids]),
            )
            .logits[0]
            .numpy()
        )
    calibration_states = np.load(sample / "encoder_hidden_states.npy")
    calibration_embeds = np.load(sample / "decoder_hidden_states.npy")[0]
    result = {
        "card_missing": card_missing(),
        "encode_shape": list(states.shape),
        "encode_max_diff": float(np.abs(states - calibration_states).max()),
        "logits_shape": list(logits.shape),
        "logits_max_diff": float(np.abs(logits - want).max()),
        "argmax_equal": bool((logits.argmax(-1) == want.argmax(-1)).all()),
        "embeds_max_diff": float(np.abs(fed[: len(ids)] - calibration_embeds).max()),
        "again_prefix_equal": bool(np.array_equal(again[: len(ids)], logits)),
        "greedy_step_calls": [{"shapes": c["shapes"], "cache_size": c["cache_size"]} for c in greedy_calls],
        "decoder_calls": [
            {"shapes": c["shapes"], "cache_size": c["cache_size"]}
            for c in npu_recorder.CALLS
            if c["call"] == "infer" and c["part"] == "decoder"
        ],
        "tokens": len(ids),
    }
    path.close()
    result["disposed"] = sum(c["call"] == "dispose" for c in npu_recorder.CALLS)
    Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:7])
