"""The offline stand-ins: tokenizer ids against openai-whisper's, tiny models that load
and generate offline, FLEURS-shaped shards that stream as FLEURS does."""

from __future__ import annotations

import io
from pathlib import Path

import huggingface_hub.constants
import pytest
import soundfile as sf
import torch
import whisper
from whisper.tokenizer import get_tokenizer

from whisper_mxq import demo
from whisper_mxq.languages import FLEURS_TO_WHISPER

SENTENCES = [
    "The quick brown fox jumps over the lazy dog, isn't it?",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "我们今天去公园散步，天气很好。",
    "Съешь же ещё этих мягких французских булок.",
    "مرحبا بالعالم، كيف حالك اليوم؟",
    "  two  spaces\n\ttab 12345 émoji 🙂 ",
]


@pytest.fixture(scope="module")
def tokenizer():
    return demo.build_tokenizer()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny"
    demo.build_tiny_model(out)
    return out


@pytest.fixture(scope="module")
def fleurs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fleurs")
    demo.build_fleurs_demo(out)
    return out


@pytest.fixture
def offline(monkeypatch):
    # huggingface_hub reads HF_HUB_OFFLINE once at import; patch the constant as well.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


# --- tokenizer ---------------------------------------------------------------------------


def test_special_ids_match_openai_whisper(tokenizer):
    reference = get_tokenizer(multilingual=True).encoding
    assert len(tokenizer) == reference.n_vocab == 51865
    expected = {
        "<|endoftext|>": 50257,
        "<|startoftranscript|>": 50258,
        "<|en|>": 50259,
        "<|translate|>": 50358,
        "<|transcribe|>": 50359,
        "<|notimestamps|>": 50363,
    }
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in expected} == expected
    for token in demo.whisper_special_tokens() + demo.timestamp_tokens():
        assert tokenizer.convert_tokens_to_ids(token) == reference.encode_single_token(token), token
    assert (tokenizer.eos_token, tokenizer.bos_token, tokenizer.unk_token, tokenizer.pad_token) == (
        "<|endoftext|>",
    ) * 4


@pytest.mark.parametrize("text", SENTENCES)
def test_text_ids_match_openai_whisper_and_round_trip(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ids == get_tokenizer(multilingual=True).encode(text)
    assert tokenizer.decode(ids) == text


def test_english_only_tokenizer_matches_openai_whisper():
    tok = demo.build_tokenizer(english_only=True)
    reference = get_tokenizer(multilingual=False)
    assert len(tok) == reference.encoding.n_vocab == 51864
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]) == [
        reference.eot,
        reference.sot,
        reference.no_timestamps,
    ]
    assert tok.encode(SENTENCES[0], add_special_tokens=False) == reference.encode(SENTENCES[0])


def test_prefix_tokens_and_timestamps(tokenizer):
    tok = demo.build_tokenizer()  # its own object: set_prefix_tokens mutates it
    tok.set_prefix_tokens(language="de", task="translate")
    assert tok.prefix_tokens == [50258, 50261, 50358, 50363]
    assert tok("hallo").input_ids[:4] == tok.prefix_tokens and tok("hallo").input_ids[-1] == 50257
    assert tokenizer.prefix_tokens == [50258, 50363]  # the shared fixture is untouched
    hello = tokenizer.encode(" Hello", add_special_tokens=False)
    ids = [50258, 50261, 50364, *hello, 50400, 50257]
    assert (
        tokenizer.decode(ids, decode_with_timestamps=True)
        == "<|startoftranscript|><|de|><|0.00|> Hello<|0.72|><|endoftext|>"
    )
    assert tokenizer.decode(ids, skip_special_tokens=True).startswith(" Hello")


# --- tiny Hugging Face model ---------------------------------------------------------------


def _load(folder: Path):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(folder, local_files_only=True).eval()
    return model, WhisperProcessor.from_pretrained(folder, local_files_only=True)


def _features(processor, n: int = 2) -> torch.Tensor:
    audio = [torch.randn(16000 * (i + 1), generator=torch.Generator().manual_seed(i)).numpy() * 0.1 for i in range(n)]
    return processor(audio=audio, sampling_rate=16000, return_tensors="pt").input_features


def test_tiny_model_loads_offline_and_generates(tiny_model, offline):
    model, processor = _load(tiny_model)
    config, gen = model.config, model.generation_config
    assert (config.vocab_size, config.d_model, config.num_mel_bins) == (51865, 64, 80)
    assert (
        config.max_source_positions,
        config.max_target_positions,
        config.decoder_start_token_id,
    ) == (1500, 448, 50258)
    assert (gen.lang_to_id["<|de|>"], gen.task_to_id, gen.no_timestamps_token_id) == (
        50261,
        {"transcribe": 50359, "translate": 50358},
        50363,
    )
    assert len(processor.tokenizer) == 51865 and processor.feature_extractor.feature_size == 80
    features = _features(processor)
    assert features.shape == (2, 80, 3000)
    out = model.generate(features, language="de", task="translate", max_new_tokens=8)
    # transformers 5 returns only new tokens; the random model emits timestamp tokens,
    # which makes Whisper's generate run a second window: up to 2 x max_new_tokens.
    assert out.shape[0] == 2 and 1 <= out.shape[1] <= 16
    assert int(out.max()) < 51865


def test_tiny_model_is_byte_identical_per_seed(tiny_model, tmp_path):
    demo.build_tiny_model(tmp_path / "same")
    demo.build_tiny_model(tmp_path / "other", seed=1)
    weights = (tiny_model / "model.safetensors").read_bytes()
    assert (tmp_path / "same" / "model.safetensors").read_bytes() == weights
    assert (tmp_path / "other" / "model.safetensors").read_bytes() != weights


@pytest.mark.parametrize(
    "kwargs, vocab, mels",
    [({"num_mel_bins": 128}, 51865, 128), ({"english_only": True}, 51864, 80)],
)
def test_tiny_model_variants_load(tmp_path, offline, kwargs, vocab, mels):
    demo.build_tiny_model(tmp_path / "m", **kwargs)
    model, processor = _load(tmp_path / "m")
    assert (model.config.vocab_size, model.config.num_mel_bins, len(processor.tokenizer)) == (
        vocab,
        mels,
        vocab,
    )
    features = _features(processor, n=1)
    assert features.shape == (1, mels, 3000)
    if kwargs.get("english_only"):
        assert not model.generation_config.is_multilingual
        assert not hasattr(model.generation_config, "lang_to_id")
        out = model.generate(features, max_new_tokens=4)
    else:
        out = model.generate(features, language="fr", task="transcribe", max_new_tokens=4)
    assert out.shape[0] == 1


def test_tiny_model_replaces_folder_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "m"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    demo.build_tiny_model(out)
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folders left

    from transformers import WhisperFeatureExtractor

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(WhisperFeatureExtractor, "save_pretrained", killed)  # the last file written
    with pytest.raises(KeyboardInterrupt):
        demo.build_tiny_model(tmp_path / "half")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


# --- tiny openai-whisper checkpoint --------------------------------------------------------


def test_tiny_openai_whisper_loads_and_decodes_a_batch(tmp_path):
    path = tmp_path / "tiny.pt"
    demo.build_tiny_openai_whisper(path)
    demo.build_tiny_openai_whisper(tmp_path / "again.pt")
    state = torch.load(path, weights_only=True)["model_state_dict"]
    again = torch.load(tmp_path / "again.pt", weights_only=True)["model_state_dict"]
    assert all(torch.equal(state[k], again[k]) and torch.isfinite(state[k]).all() for k in state)

    model = whisper.load_model(str(path), device="cpu")
    assert model.is_multilingual and model.dims.n_vocab == 51865
    audio = [torch.randn(16000, generator=torch.Generator().manual_seed(i)) * 0.1 for i in range(2)]
    mel = torch.stack([whisper.log_mel_spectrogram(whisper.pad_or_trim(a)) for a in audio])
    options = whisper.DecodingOptions(
        language="de", task="transcribe", without_timestamps=True, fp16=False, sample_len=8
    )
    results = whisper.decode(model, mel, options)
    assert len(results) == 2 and all(len(r.tokens) <= 8 and r.language == "de" for r in results)


# --- FLEURS-shaped data ----------------------------------------------------------------------


def _stream(files: str):
    import datasets

    rows = datasets.load_dataset("parquet", data_files={"validation": files}, split="validation", streaming=True)
    assert isinstance(rows.features["audio"], datasets.Audio)
    return list(rows.cast_column("audio", datasets.Audio(decode=False)))


def test_fleurs_demo_layout(fleurs):
    langs = sorted(p.name for p in fleurs.iterdir())
    assert len(langs) >= 6 and set(langs) <= set(FLEURS_TO_WHISPER)
    assert all([p.name for p in (fleurs / lang / "validation").iterdir()] == ["0000.parquet"] for lang in langs)


def test_fleurs_demo_streams_real_speech(fleurs):
    rows = _stream(f"{fleurs}/de_de/validation/*.parquet")
    assert len(rows) == len(demo.DEMO_SENTENCES["de_de"])
    assert (rows[4]["raw_transcription"], rows[4]["transcription"]) == (
        "Bitte schließ die Tür, wenn du gehst.",
        "bitte schließ die tür wenn du gehst",
    )
    for row in rows:
        assert set(row) == set(demo.FLEURS_COLUMNS)
        wav, rate = sf.read(io.BytesIO(row["audio"]["bytes"]))
        assert wav.ndim == 1 and rate == 22050 and len(wav) == row["num_samples"]
        assert 0.5 <= len(wav) / rate <= 15 and abs(wav).max() > 0.1
        assert row["transcription"] == row["transcription"].lower() and not set(row["transcription"]) & set(".,")
        assert row["language"] == "German" and row["gender"] in (0, 1)
        assert row["path"].endswith(".wav") and row["audio"]["path"] == row["path"]


def test_fleurs_demo_is_byte_identical(fleurs, tmp_path):
    # espeak-ng output is deterministic at a fixed voice, speed and pitch; a shard only
    # depends on its language's sentences and the seed.
    demo.build_fleurs_demo(tmp_path, languages={"de_de": None, "cmn_hans_cn": demo.DEMO_SENTENCES["cmn_hans_cn"]})
    for lang in ("de_de", "cmn_hans_cn"):
        shard = f"{lang}/validation/0000.parquet"
        assert (tmp_path / shard).read_bytes() == (fleurs / shard).read_bytes()


def test_write_fleurs_rows_keeps_bad_clips(tmp_path):
    good = demo.espeak_wav("Guten Tag.", "de")
    clips = [good, b"not a wav at all", good[:100], b""]
    rows = [demo.fleurs_row("de_de", i, "Guten Tag.", wav) for i, wav in enumerate(clips)]
    demo.write_fleurs_rows(tmp_path / "de_de/validation/0000.parquet", rows)
    back = _stream(f"{tmp_path}/de_de/validation/*.parquet")
    assert [r["audio"]["bytes"] for r in back] == clips
    assert [r["num_samples"] for r in back][1:] == [0, 28, 0] and back[0]["num_samples"] > 0
    with pytest.raises(ValueError, match="columns"):
        demo.write_fleurs_rows(tmp_path / "x.parquet", [{"id": 1}])


def test_unknown_language_or_voice_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match="xx_yy"):
        demo.build_fleurs_demo(tmp_path, languages={"xx_yy": ["hi"]})
    with pytest.raises(ValueError, match="el_gr"):
        demo.build_fleurs_demo(tmp_path, languages={"el_gr": None})
    # espeak-ng itself would fall back to English without a word
    with pytest.raises(ValueError, match="no-such-voice"):
        demo.espeak_wav("hi", "no-such-voice")
    with pytest.raises(ValueError, match=r"\+nope"):
        demo.espeak_wav("hi", "de+nope")
