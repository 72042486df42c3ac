"""quality.backend npu: whisper_mxq.npu.NpuPath, the report's NPU backend, on the demo's
bundle through Mobilint's real client with qbruntime's device calls recorded (in the
runtime environment of tests/runtime/make_env.sh), and on a real card where one is."""

from __future__ import annotations

import os
import subprocess

import pytest
from test_runtime_bundle import BUNDLE, MODEL, RUNTIME, run_in_runtime, runtime_bundles, runtime_python  # noqa: F401 (fixture)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["tutorial-aries", "mobilint-regulus"])
def test_npu_path_matches_the_calibration_and_the_float_model(runtime_bundles, tmp_path, case):
    """Both kinds of compiled decoder: every position's logits (tutorial) and the last
    token's only (mobilint-1.3's last_token_only)."""
    work = runtime_bundles[case]
    sample = "de_de_0000"
    seen = run_in_runtime(
        "check_npu.py",
        work / BUNDLE,
        work / f"models/{MODEL}",
        work / "calibration/decoder/whisper_decoder_calib.json",
        sample,
        work / f"calibration/encoder/encoder_calib_{sample}.npy",
        tmp_path=tmp_path,
    )
    # encoder states and decoder input embeddings as the workflow's calibration computed them
    assert seen["encode_shape"] == [1, 1500, 64] and seen["encode_max_diff"] < 1e-4
    assert seen["embeds_max_diff"] < 1e-5
    # one row per token, each the float decoder's teacher-forced logits
    assert seen["logits_shape"] == [seen["tokens"], 51865]
    assert seen["logits_max_diff"] < 1e-3 and seen["argmax_equal"]
    # one token a call, the KV cache kept: a greedy step costs one call, at the right position
    assert [c["cache_size"] for c in seen["decoder_calls"]] == list(range(seen["tokens"] + 1))
    assert all(c["shapes"] == [[1, 1, 1, 64], [1, 1, 1500, 64]] for c in seen["decoder_calls"])
    assert seen["again_prefix_equal"] and len(seen["greedy_step_calls"]) == 1
    assert seen["disposed"] == 2


def test_npu_path_on_a_card(tmp_path):
    """On a machine with a Mobilint card and a compiled bundle ($WHISPER_MXQ_NPU_BUNDLE)."""
    python = runtime_python()
    code = "from whisper_mxq.npu import card_missing; print(card_missing() or '')"
    env = dict(os.environ, PYTHONPATH=str(RUNTIME.parents[1] / "workflow"))
    reason = subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    if reason:
        pytest.skip(reason)
    bundle = os.environ.get("WHISPER_MXQ_NPU_BUNDLE")
    if not bundle:
        pytest.skip("a Mobilint card is present, but no compiled bundle: set WHISPER_MXQ_NPU_BUNDLE")
    code = (
        "import numpy as np, sys; from whisper_mxq.npu import NpuPath; p = NpuPath(sys.argv[1]); "
        "s = p.encode(np.zeros((1, 3000, p.model.config.num_mel_bins), np.float32)); "
        "l = p.logits([p.model.config.decoder_start_token_id], s); p.close(); "
        "assert s.shape[:2] == (1, p.model.config.max_source_positions) and np.isfinite(l).all(), (s.shape, l.shape)"
    )
    subprocess.run([str(python), "-c", code, bundle], env=env, check=True, timeout=600)
