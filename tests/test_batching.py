"""Batched calibration and labels give each sample what a one-sample run gives.

Tiny random models from the offline demo's builders and synthetic clips of different
lengths; two languages and both tasks, so batches are split by (language, task).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_mxq import calibration, demo, labels, layout

LANGS = ["de_de", "fr_fr"]
PER_LANG = 3
SAMPLES = [layout.sample_id(lang, i) for lang in LANGS for i in range(PER_LANG)]


def _clip(i: int) -> np.ndarray:
    """1.5 to 9 s of chirps and noise, different per clip."""
    rng = np.random.default_rng(i)
    n = int(16000 * (1.5 + 1.5 * i))
    t = np.arange(n) / 16000
    tone = np.sin(2 * np.pi * (200 + 60 * i) * t * (1 + 0.3 * t))
    return (0.3 * tone + 0.05 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("batching")
    demo.build_tiny_model(root / "model")
    demo.build_tiny_openai_whisper(root / "tiny.pt")
    for i, sample in enumerate(SAMPLES):
        sf.write(root / f"{sample}.wav", _clip(i), 16000, subtype="PCM_16")
    wavs = [str(root / f"{s}.wav") for s in SAMPLES]
    npys = [str(root / "enc" / f"{s}.npy") for s in SAMPLES]
    calibration.calibrate_encoder(str(root / "model"), wavs, npys)
    return root


def _decoder_run(work: Path, name: str, **settings) -> list[Path]:
    dirs = [work / name / s for s in SAMPLES]
    calibration.calibrate_decoder(
        str(work / "model"),
        SAMPLES,
        [str(work / "enc" / f"{s}.npy") for s in SAMPLES],
        [str(d) for d in dirs],
        # translate_ratio 0.5 with seed 0 draws both tasks over these six ids
        calibration.DecoderSettings(seed=0, translate_ratio=0.5, max_new_tokens=12, **settings),
    )
    return dirs


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """Within 1e-5 relative, the tolerance scaled by the tensor's magnitude (an
    element near zero has no meaningful relative error of its own)."""
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_decoder_batch_equals_one_at_a_time(work):
    tasks = {calibration.choose_task(0, s, 0.5) for s in SAMPLES}
    assert tasks == {"transcribe", "translate"}
    batched = _decoder_run(work, "batch", batch_size=len(SAMPLES))
    single = _decoder_run(work, "single", batch_size=1)
    for b, s in zip(batched, single):
        tb = json.loads((b / "tokens.json").read_text())
        ts = json.loads((s / "tokens.json").read_text())
        assert tb == ts, b.name  # token ids, task, text: identical
        for name in ("encoder_hidden_states.npy", "decoder_hidden_states.npy"):
            _assert_close(np.load(b / name), np.load(s / name))


@pytest.mark.parametrize("dtype", ["bf16"])  # fp16 matmuls are not on every CPU build
def test_half_generation_saves_fp32_tensors_from_fp32_forward(work, dtype):
    """Only the decode runs in half precision: encoder states equal the fp32 run's and
    decoder inputs are the fp32 embedding tables at the (possibly different) ids."""
    from safetensors.numpy import load_file

    weights = load_file(work / "model" / "model.safetensors")
    tokens_table = weights["model.decoder.embed_tokens.weight"]
    positions_table = weights["model.decoder.embed_positions.weight"]
    half = _decoder_run(work, f"gen_{dtype}", batch_size=4, dtype=dtype)
    full = _decoder_run(work, "gen_fp32", batch_size=4, dtype="fp32")
    for h, f in zip(half, full):
        enc = np.load(h / "encoder_hidden_states.npy")
        np.testing.assert_array_equal(enc, np.load(f / "encoder_hidden_states.npy"))
        ids = json.loads((h / "tokens.json").read_text())["token_ids"]
        dec = np.load(h / "decoder_hidden_states.npy")
        assert dec.dtype == np.float32
        np.testing.assert_allclose(dec[0], tokens_table[ids] + positions_table[: len(ids)], rtol=1e-6, atol=1e-6)


def test_bad_generation_dtype_names_the_key(work):
    with pytest.raises(ValueError, match="calibration.dtype"):
        _decoder_run(work, "bad", dtype="fp8")


def test_labels_batch_equals_one_at_a_time(work):
    for lang in LANGS:
        wavs = [str(work / f"{lang}_{i:04d}.wav") for i in range(PER_LANG)]
        batched = labels.label_group(
            str(work / "tiny.pt"), lang, wavs, str(work / f"labels_{lang}_b.json"), batch_size=PER_LANG, max_tokens=8
        )
        single = labels.label_group(
            str(work / "tiny.pt"), lang, wavs, str(work / f"labels_{lang}_1.json"), batch_size=1, max_tokens=8
        )
        assert batched == single
        assert set(batched) == {Path(w).name for w in wavs}
