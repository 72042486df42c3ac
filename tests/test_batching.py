"""Batched calibration and labels give each sample what a one-sample run gives.

Tiny random models from the offline demo's builders and synthetic clips of different
lengths; two languages and both tasks, which share batches (each row its own prompt).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_mxq import calibration, demo, labels, layout
from whisper_mxq import decoder_calibration as dec

from calib_helpers import calib_settings, calibrate_decoder, calibrate_encoder, greedy_once, manifest_for

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
    calibrate_encoder(str(root / "model"), wavs, npys)
    return root


def _decoder_run(work: Path, name: str, **settings) -> list[Path]:
    dirs = [work / name / s for s in SAMPLES]
    calibrate_decoder(
        str(work / "model"),
        SAMPLES,
        [str(work / "enc" / f"{s}.npy") for s in SAMPLES],
        [str(d) for d in dirs],
        # translate_ratio 0.5 with seed 0 draws both tasks over these six ids
        calib_settings(seed=0, translate_ratio=0.5, max_new_tokens=12, **settings),
    )
    return dirs


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """Within 1e-5 relative, the tolerance scaled by the tensor's magnitude (an
    element near zero has no meaningful relative error of its own)."""
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_decoder_batch_equals_one_at_a_time(work):
    tasks = {dec.choose_task(0, s, 0.5) for s in SAMPLES}
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


def _bias_towards_end(model, states, prompt_ids: list[int], steps: int, share: float) -> None:
    """Point the end-of-text row of the output projection along the decoder's mean hidden
    state, scaled so that end-of-text would win at about `share` of (row, step)
    positions."""
    import torch

    eot = model.generation_config.eos_token_id
    model.generation_config.suppress_tokens = [t for t in model.generation_config.suppress_tokens if t != eot]
    ids = torch.tensor([prompt_ids + row for row in greedy_once(model, states, prompt_ids, steps)])
    with torch.no_grad():
        hidden = model.get_decoder()(input_ids=ids, encoder_hidden_states=states).last_hidden_state
        hidden = hidden[:, len(prompt_ids) - 1 : -1]  # the states that pick each new token
        top = model.proj_out(hidden).max(-1).values
        direction = hidden.reshape(-1, hidden.shape[-1]).mean(0)
        direction = direction / direction.norm()
        scale = torch.quantile((top / (hidden @ direction)).flatten(), 1 - share)
        model.proj_out.weight[eot] = direction * scale


@pytest.mark.parametrize("end_share", [0, 0.05, 0.95])
def test_greedy_picks_the_tokens_generate_picks(work, end_share):
    """decoding.greedy against transformers' own Whisper `generate` from the same encoder
    states, two (language, task) prompts, one row and a batch. end_share 0: the demo
    model never ends; 0.05: some rows end early and greedy fills them with end-of-text
    where generate pads them; 0.95: end-of-text wins nearly everywhere but at the
    first step, where begin_suppress_tokens forbids it."""
    import torch
    from transformers import WhisperForConditionalGeneration
    from transformers.modeling_outputs import BaseModelOutput

    from whisper_mxq.models import load_processor

    model = WhisperForConditionalGeneration.from_pretrained(work / "model", local_files_only=True).eval()
    tok = load_processor(str(work / "model")).tokenizer
    eot = tok.eos_token_id
    feats = torch.from_numpy(np.concatenate([np.load(work / "enc" / f"{s}.npy") for s in SAMPLES])).transpose(1, 2)
    with torch.no_grad():
        states = model.get_encoder()(feats).last_hidden_state
    if end_share:
        _bias_towards_end(model, states, dec.prompt(tok, "de", "transcribe", True).ids, 12, end_share)
    ends = []
    for language, task in [("de", "transcribe"), ("fr", "translate")]:
        prompt_ids = dec.prompt(tok, language, task, multilingual=True).ids
        for rows in (slice(0, 1), slice(0, len(SAMPLES))):
            with torch.no_grad():
                want = model.generate(
                    encoder_outputs=BaseModelOutput(last_hidden_state=states[rows]),
                    language=language,
                    task=task,
                    max_new_tokens=12,
                ).tolist()
            got = greedy_once(model, states[rows], prompt_ids, 12)
            assert len(got) == len(want)
            for w, g in zip(want, got):
                w = w[len(prompt_ids) :] if w[: len(prompt_ids)] == prompt_ids else w  # transformers 4 keeps it
                assert g[: len(w)] == w[: len(g)]  # generate stops short of 12 once all rows ended
                assert len(dec.text_ids(g, eot)) > 0
                ends.append(g.index(eot) if eot in g else None)
    if end_share == 0:
        assert set(ends) == {None}
    elif end_share < 0.5:
        assert None in ends and set(ends) != {None}
    else:  # rows that end right after the one token begin-suppression forces
        assert 1 in ends


def test_greedy_stops_at_the_last_position_embedding(work):
    """max_new_tokens past the decoder's positions: the decode fills exactly the positions
    there are (generate refuses such a request), and a one-token decode works."""
    import torch
    from transformers import WhisperForConditionalGeneration

    from whisper_mxq.models import load_processor

    model = WhisperForConditionalGeneration.from_pretrained(work / "model", local_files_only=True).eval()
    tok = load_processor(str(work / "model")).tokenizer
    prompt_ids = dec.prompt(tok, "de", "transcribe", multilingual=True).ids
    feats = torch.from_numpy(np.load(work / "enc" / f"{SAMPLES[0]}.npy")).transpose(1, 2)
    with torch.no_grad():
        states = model.get_encoder()(feats).last_hidden_state
    room = model.config.max_target_positions - len(prompt_ids)
    (row,) = greedy_once(model, states, prompt_ids, room + 50)
    assert len(row) == room
    (first,) = greedy_once(model, states, prompt_ids, 1)
    assert first == row[:1]


def test_greedy_reused_across_batches_equals_fresh_runs(work):
    """One Greedy kept across batches (as a calibrate job keeps it): same shape with other
    states and another prompt, a new shape, then the first shape again; each result
    equals a fresh greedy() of its own. Stale cross-attention keys or self-attention
    slots from the previous batch would change the ids."""
    import torch
    from transformers import WhisperForConditionalGeneration

    from whisper_mxq import decoding
    from whisper_mxq.models import load_processor

    model = WhisperForConditionalGeneration.from_pretrained(work / "model", local_files_only=True).eval()
    tok = load_processor(str(work / "model")).tokenizer
    # Random states: the demo model decodes its encoder's outputs of these clips alike.
    states = 4 * torch.randn(
        (6, model.config.max_source_positions, model.config.d_model), generator=torch.Generator().manual_seed(0)
    )
    de = dec.prompt(tok, "de", "transcribe", multilingual=True).ids
    fr = dec.prompt(tok, "fr", "translate", multilingual=True).ids
    kept = decoding.Greedy(model, 12)
    calls = [(states[0:3], [de] * 3), (states[3:6], [fr] * 3), (states[0:2], [de] * 2), (states[3:6], [de, fr, de])]
    results, runs = [], []
    for s, p in calls:
        results.append(kept(s, p))
        runs.append(kept._kept[1])
    for (s, p), got in zip(calls, results):
        for row in range(len(p)):  # each row as its own batch of one, with its own prompt
            assert got[row] == greedy_once(model, s[row : row + 1], p[row], 12)[0]
    assert results[0] != results[3]  # other states decode differently: the check has teeth
    # Reused, not rebuilt: the same buffers (a captured graph reads them by address)
    # for the same shape, new ones for a new shape.
    assert runs[0] is runs[1] and runs[2] is not runs[1] and runs[3] is not runs[2]
    first = kept(states[0:3], [de] * 3)
    ptrs = [t.data_ptr() for pair in kept._kept[1].dec.cross for t in pair]
    assert kept(states[3:6], [fr] * 3) != first
    assert [t.data_ptr() for pair in kept._kept[1].dec.cross for t in pair] == ptrs
    with pytest.raises(ValueError, match="prompts of one length"):
        kept(states[0:2], [de, de[:-1]])


def test_job_pipeline_equals_encoder_then_decoder(work, tmp_path, monkeypatch):
    """calibrate_job (features on a thread pool, streamed into the decoder batches)
    writes the same files as the encoder features followed by the decoder files, whatever
    its thread count, and its summary lists what each sample's folder holds."""
    wavs = [str(work / f"{s}.wav") for s in SAMPLES]
    manifest, stamp = manifest_for(wavs, tmp_path)
    settings = calib_settings(seed=0, translate_ratio=0.5, max_new_tokens=12, batch_size=2)
    runs = {}
    for threads in (1, 3):
        root = tmp_path / f"t{threads}"
        calibration.calibrate_job(
            str(work / "model"),
            manifest,
            stamp,
            [str(root / layout.ENCODER_NPY.format(sample=s)) for s in SAMPLES],
            [str(root / layout.DECODER_SAMPLE_DIR.format(sample=s)) for s in SAMPLES],
            str(root / "summary.json"),
            settings,
            threads=threads,
        )
        runs[threads] = root
    reference = _decoder_run(work, "reference", batch_size=2)
    for root in runs.values():
        summary = json.loads((root / "summary.json").read_text())["samples"]
        assert [e["sample"] for e in summary] == SAMPLES
        for s, ref, entry in zip(SAMPLES, reference, summary):
            got = root / layout.ENCODER_NPY.format(sample=s)
            assert got.read_bytes() == (work / "enc" / f"{s}.npy").read_bytes()
            assert entry == json.loads((ref / "tokens.json").read_text())
            folder = root / layout.DECODER_SAMPLE_DIR.format(sample=s)
            for name in ("encoder_hidden_states.npy", "decoder_hidden_states.npy"):
                _assert_close(np.load(folder / name), np.load(ref / name))


def test_job_refuses_a_clip_changed_after_download(work, tmp_path):
    wavs = [str(tmp_path / f"{s}.wav") for s in SAMPLES[:2]]
    for s, w in zip(SAMPLES, wavs):
        Path(w).write_bytes((work / f"{s}.wav").read_bytes())
    manifest, stamp = manifest_for(wavs, tmp_path)
    Path(wavs[1]).write_bytes((work / f"{SAMPLES[3]}.wav").read_bytes())  # another clip
    with pytest.raises(ValueError, match=rf"{wavs[1]}: not the clip downloaded"):
        calibration.calibrate_job(
            str(work / "model"),
            manifest,
            stamp,
            [str(tmp_path / layout.ENCODER_NPY.format(sample=s)) for s in SAMPLES[:2]],
            [str(tmp_path / layout.DECODER_SAMPLE_DIR.format(sample=s)) for s in SAMPLES[:2]],
            str(tmp_path / "summary.json"),
            calib_settings(max_new_tokens=2),
            threads=1,
        )
    assert not (tmp_path / "summary.json").exists()


def test_bad_generation_dtype_names_the_key(work):
    with pytest.raises(ValueError, match="calibration.dtype"):
        _decoder_run(work, "bad", dtype="fp8")


def test_labels_batch_equals_one_at_a_time(work, tmp_path):
    """A label job's batched decode gives each clip the texts openai-whisper's decode
    gives it alone, for clips of two languages in one job."""
    wavs = [str(work / f"{s}.wav") for s in SAMPLES]
    manifest, stamp = manifest_for(wavs, tmp_path)
    runs = {}
    for rows in (len(SAMPLES), 1):
        runs[rows] = labels.label_job(
            str(work / "tiny.pt"),
            str(work / "tiny.pt"),
            manifest,
            stamp,
            str(tmp_path / f"labels_{rows}.json"),
            batch_size_setting=rows,
            max_tokens=8,
        )
    assert runs[len(SAMPLES)] == runs[1]
    assert list(runs[1]) == [Path(w).name for w in wavs]
    assert {v["language"] for v in runs[1].values()} == set(LANGS)
    # openai-whisper's own one-clip decode, the language given in its options
    import torch
    import whisper

    from whisper_mxq import audio
    from whisper_mxq.languages import whisper_code

    model = whisper.load_model(str(work / "tiny.pt"), device="cpu")
    no_timestamps = whisper.tokenizer.get_tokenizer(True).no_timestamps
    for wav in wavs:
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio.load(wav))))
        lang = whisper_code(layout.sample_lang(Path(wav).stem))
        for task, key in (("transcribe", "transcription"), ("translate", "translation")):
            options = whisper.DecodingOptions(
                language=lang,
                task=task,
                without_timestamps=True,
                fp16=False,
                sample_len=8,
                suppress_tokens=[-1, no_timestamps],
            )
            assert whisper.decode(model, mel, options).text.strip() == runs[len(SAMPLES)][Path(wav).name][key]


def test_labels_from_a_transformers_model_batch_equals_one_at_a_time(work, tmp_path):
    """labels.model may be a Hugging Face Whisper (here the demo's tiny model): decoded
    in batches with transformers' generate, the same texts as one clip at a time."""
    wavs = [str(work / f"{s}.wav") for s in SAMPLES]
    manifest, stamp = manifest_for(wavs, tmp_path)
    model = str(work / "model")
    assert labels.model_format(model) == labels.TRANSFORMERS
    batched = labels.label_job(
        model, model, manifest, stamp, str(tmp_path / "b.json"), batch_size_setting=4, max_tokens=6
    )
    single = labels.label_job(
        model, model, manifest, stamp, str(tmp_path / "s.json"), batch_size_setting=1, max_tokens=6
    )
    assert batched == single and all(v["transcription"] for v in batched.values())
