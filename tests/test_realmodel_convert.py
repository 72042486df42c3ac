"""The converted tiny.en against independent references: openai-whisper's tokenizer and
decoding rules, openai-whisper's model code, and CTranslate2's own runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from realmodel import build, convert, ct2
from realmodel.fixtures import realmodel, realmodel_clips, realmodel_dir  # noqa: F401

TEXTS = [
    "And so my fellow Americans, ask not what your country can do for you.",
    " leading space, trailing space ",
    "Numbers 3.14159 and 1,000,000; symbols: @#$%^&*()",
    "Ünïcödé façade naïve 日本語 Ελληνικά",
    "new\nlines\tand  double  spaces",
    "It's 'quoted' -- don't",
]


@pytest.fixture(scope="module")
def tokenizer(realmodel_dir):
    from transformers import WhisperTokenizerFast

    return WhisperTokenizerFast.from_pretrained(realmodel_dir / build.MODEL_DIR)


def test_tokenizer_ids_match_openai_whisper(tokenizer):
    from whisper.tokenizer import get_tokenizer

    reference = get_tokenizer(multilingual=False)
    for text in TEXTS:
        assert tokenizer.encode(text, add_special_tokens=False) == reference.encode(text), text
    specials = reference.special_tokens  # every control and timestamp token, by name
    assert len(specials) == 1 + 1 + 99 + 6 + 1501
    wrong = {
        t: (i, tokenizer.convert_tokens_to_ids(t))
        for t, i in specials.items()
        if tokenizer.convert_tokens_to_ids(t) != i
    }
    assert not wrong
    assert len(tokenizer) == reference.encoding.n_vocab
    assert tokenizer.decode(reference.encode(TEXTS[3])) == TEXTS[3]


def test_generation_config_follows_openai_whisper_rules(realmodel_dir, tokenizer):
    from whisper.tokenizer import get_tokenizer

    ref = get_tokenizer(multilingual=False)
    gen = json.loads((realmodel_dir / build.MODEL_DIR / "generation_config.json").read_text())
    # openai-whisper's DecodingTask suppresses these with suppress_tokens=[-1]
    expected = sorted(
        {*ref.non_speech_tokens, ref.transcribe, ref.translate, ref.sot, ref.sot_prev, ref.sot_lm, ref.no_speech}
    )
    assert gen["suppress_tokens"] == expected
    assert gen["begin_suppress_tokens"] == [*ref.encode(" "), ref.eot]  # SuppressBlank
    assert (gen["decoder_start_token_id"], gen["eos_token_id"], gen["no_timestamps_token_id"]) == (
        ref.sot,
        ref.eot,
        ref.no_timestamps,
    )
    assert (gen["is_multilingual"], gen["max_length"]) == (False, 448)
    assert all(0 <= layer < 4 and 0 <= head < 6 for layer, head in gen["alignment_heads"])


def test_ctranslate2_reader_accounts_for_every_tensor(realmodel_dir):
    model = ct2.read(build.ctranslate2_dir(realmodel_dir) / "model.bin")
    d = convert.dims(model)
    assert (d.n_audio_layer, d.n_text_layer, d.n_audio_head, d.n_audio_state, d.n_vocab) == (4, 4, 6, 384, 51864)
    state = convert.hf_state_dict(model)
    used = sum(v.size for v in state.values())
    # the zero key biases CTranslate2 fuses in: encoder and decoder self-attention, cross-attention
    fused_k_bias = (d.n_audio_layer + 2 * d.n_text_layer) * d.n_text_state
    stored = sum(v.size for v in model.variables.values() if v.ndim > 0)
    assert used + fused_k_bias == stored


def _greedy_transformers(model, features: np.ndarray, max_new: int = 64) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.torch.generate(
            torch.from_numpy(features.transpose(0, 2, 1)), max_new_tokens=max_new, num_beams=1, do_sample=False
        )
    return [int(i) for i in out[0] if i < model.eot]


def test_encoder_and_greedy_decode_match_ctranslate2(realmodel, realmodel_clips, realmodel_dir):
    ctranslate2 = pytest.importorskip("ctranslate2")
    runtime = ctranslate2.models.Whisper(
        str(build.ctranslate2_dir(realmodel_dir)), device="cpu", compute_type="float32"
    )
    _, held_out = realmodel_clips
    sqnr, same = [], 0
    for clip in held_out[:4]:
        mel = ctranslate2.StorageView.from_array(np.ascontiguousarray(clip.features.transpose(0, 2, 1)))
        theirs = np.asarray(runtime.encode(mel, to_cpu=True))
        sqnr.append(10 * np.log10(np.sum(theirs.astype(np.float64) ** 2) / np.sum((theirs - clip.states) ** 2)))
        # no length cap on either side (the two count the prompt differently)
        result = runtime.generate(mel, [realmodel.prompt], beam_size=1, max_length=448)
        ours = _greedy_transformers(realmodel, clip.features, 448 - len(realmodel.prompt))
        same += [i for i in result[0].sequences_ids[0] if i < realmodel.eot] == ours
    assert min(sqnr) > 60, sqnr  # measured 106-119 dB over all 46 clips: float rounding only
    assert same == 4  # all 46 clips decode identically


def test_openai_whisper_checkpoint_is_the_same_model(realmodel, realmodel_clips, realmodel_dir):
    import torch
    import whisper

    model = whisper.load_model(str(realmodel_dir / build.LABEL_MODEL), device="cpu")  # weights_only inside
    assert not model.is_multilingual and model.dims.n_vocab == 51864
    _, held_out = realmodel_clips
    clip = held_out[0]
    with torch.no_grad():
        states = model.encoder(torch.from_numpy(clip.features.transpose(0, 2, 1))).numpy()
    assert np.max(np.abs(states - clip.states)) < 1e-3
    options = whisper.DecodingOptions(language="en", without_timestamps=True, fp16=False)
    text = whisper.decode(model, torch.from_numpy(clip.features[0].T), options).text
    assert text.strip() == realmodel.text(_greedy_transformers(realmodel, clip.features))


def test_trained_model_transcribes_the_held_out_speech(realmodel, realmodel_clips):
    from realmodel.onnx_harness import wer

    _, held_out = realmodel_clips
    texts = [realmodel.text(_greedy_transformers(realmodel, c.features, 96)) for c in held_out]
    assert len(held_out) >= 20
    # a random model scores ~1.0; OpenAI's tiny.en about 0.16 on these clips
    assert wer([c.transcript for c in held_out], texts) < 0.3
