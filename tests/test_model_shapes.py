"""Every Whisper size: shapes come from the model config, English-only models have no
language or task tokens. The real workflow runs up to `calibration` on tiny random
models of three shapes (80 and 128 mel bins, three widths, one English-only)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from whisper_mxq import demo, labels, models

from calib_helpers import calib_settings, calibrate_decoder, manifest_for
from conftest import offline_env, snakemake

pytestmark = pytest.mark.slow


@dataclasses.dataclass(frozen=True)
class Shape:
    name: str  # the model folder's name; `.en` marks English-only, as on the Hub
    num_mel_bins: int
    d_model: int
    english_only: bool
    languages: tuple[str, ...]


# One language each keeps the three runs cheap (every job is a fresh Python process).
SHAPES = [
    Shape("whisper-toy-80", 80, 64, False, ("de_de",)),  # small-like
    Shape("whisper-toy-128", 128, 96, False, ("en_us",)),  # large-v3-like
    Shape("whisper-toy-80.en", 80, 48, True, ("en_us",)),  # tiny.en-like
]
N = 2  # samples per language
LANGUAGES = sorted({lang for shape in SHAPES for lang in shape.languages})


@pytest.fixture(scope="module")
def fleurs(tmp_path_factory) -> Path:
    """Espeak-ng speech in FLEURS' layout, two clips per language, shared by every shape."""
    out = tmp_path_factory.mktemp("fleurs") / "fleurs"
    demo.build_fleurs_demo(out, languages={lang: demo.DEMO_SENTENCES[lang][:N] for lang in LANGUAGES})
    return out


@pytest.fixture(scope="module", params=SHAPES, ids=lambda s: s.name)
def run(request, fleurs, tmp_path_factory):
    """The workflow up to `calibration` on a tiny model of one shape."""
    shape: Shape = request.param
    root = tmp_path_factory.mktemp(shape.name)
    model_dir = root / "source" / shape.name
    demo.build_tiny_model(
        model_dir, num_mel_bins=shape.num_mel_bins, d_model=shape.d_model, english_only=shape.english_only
    )
    config = {
        "model": str(model_dir),
        "fleurs": {"source": str(fleurs), "split": "validation"},
        "languages": list(shape.languages),
        "samples_per_language": N,
        "calibration": {
            "samples_per_job": N,
            # all translate where a model can: an English-only one must still get none
            "translate_ratio": 1.0,
            "max_new_tokens": 4,
            "batch_size": N,
            "device": "cpu",
        },
    }
    cfg = root / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    work = root / "work"
    snakemake(work, "calibration", "-j2", "--configfile", str(cfg), env=offline_env(double=False))
    return SimpleNamespace(shape=shape, work=work, model_dir=model_dir)


def _model_config(model_dir: Path) -> dict:
    return json.loads((model_dir / "config.json").read_text())


def test_encoder_features_follow_mel_bins(run):
    cfg = _model_config(run.model_dir)
    assert cfg["num_mel_bins"] == run.shape.num_mel_bins
    lines = (run.work / "calibration/encoder/whisper_encoder_cali.txt").read_text().splitlines()
    assert len(lines) == N * len(run.shape.languages)
    for path in lines:
        arr = np.load(path, allow_pickle=False)
        assert arr.shape == (1, 2 * cfg["max_source_positions"], cfg["num_mel_bins"])
        assert arr.dtype == np.float32 and arr.flags["C_CONTIGUOUS"]


def test_decoder_files_follow_width_positions_and_vocabulary(run):
    from safetensors.numpy import load_file

    cfg = _model_config(run.model_dir)
    d, n_source = cfg["d_model"], cfg["max_source_positions"]
    assert d == run.shape.d_model
    weights = load_file(run.model_dir / "model.safetensors")
    tokens_table = weights["model.decoder.embed_tokens.weight"]
    positions_table = weights["model.decoder.embed_positions.weight"]
    assert tokens_table.shape == (cfg["vocab_size"], d)
    calib = json.loads((run.work / "calibration/decoder/whisper_decoder_calib.json").read_text())
    assert calib["info"]["input shapes"] == [[1, -1, d], [1, n_source, d]]
    assert len(calib["calib paths"]) == N * len(run.shape.languages)
    for (dec_path, enc_path), meta in zip(calib["calib paths"], calib["metadata"]):
        ids = meta["token_ids"]
        assert max(ids) < cfg["vocab_size"] and len(ids) <= cfg["max_target_positions"]
        enc = np.load(enc_path, allow_pickle=False)
        dec = np.load(dec_path, allow_pickle=False)
        assert enc.shape == (1, n_source, d) and enc.dtype == np.float32
        assert dec.shape == (1, len(ids), d) and dec.dtype == np.float32
        np.testing.assert_allclose(dec[0], tokens_table[ids] + positions_table[: len(ids)], rtol=1e-6, atol=1e-6)


def test_prompt_tokens_follow_model_kind(run):
    """Checked against openai-whisper's own tokenizer for the model's vocabulary."""
    import whisper.tokenizer

    multilingual = not run.shape.english_only
    tok = whisper.tokenizer.get_tokenizer(multilingual=multilingual)
    calib = json.loads((run.work / "calibration/decoder/whisper_decoder_calib.json").read_text())
    task_types = set()
    for meta in calib["metadata"]:
        ids = meta["token_ids"]
        if multilingual:
            task = "translate" if meta["use_translation"] else "transcribe"
            lang = tok.special_tokens[f"<|{meta['source_language']}|>"]
            prompt = [tok.sot, lang, tok.special_tokens[f"<|{task}|>"], tok.no_timestamps]
        else:
            assert meta["use_translation"] is False
            prompt = [tok.sot, tok.no_timestamps]  # no language, no task
        assert ids[: len(prompt)] == prompt
        assert ids[-1] == tok.eot and all(t < tok.eot for t in ids[len(prompt) : -1])
        task_types.add(meta["task_type"])
    if multilingual:
        assert task_types == {"translation_with_lang"}
    else:
        assert task_types == {"transcription_no_lang"}
        assert "<|en|>" not in json.dumps(calib["metadata"])


# --- English-only refusals and fallbacks, no workflow run ------------------------------


def test_english_only_is_read_from_the_model_config_not_the_folder_name(tmp_path):
    """A local English-only model (its config says so, whatever its folder is called)
    with other languages fails before any job; a multilingual model in a folder named
    `.en` is accepted."""
    english = tmp_path / "toy"
    demo.build_tiny_model(english, d_model=32, english_only=True)
    multilingual = tmp_path / "whisper-x.en"
    demo.build_tiny_model(multilingual, d_model=32)
    env = offline_env(double=False)
    cfg = tmp_path / "en.yaml"
    cfg.write_text(f"model: {english}\nlanguages: [en_us, de_de]\n")
    proc = snakemake(tmp_path / "w1", "-n", "-j1", "--configfile", str(cfg), env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "English-only" in out and "'languages'" in out
    assert not (tmp_path / "w1" / "data").exists()
    for model, langs in ((english, "[en_us]"), (multilingual, "[en_us, de_de]")):
        cfg.write_text(f"model: {model}\nlanguages: {langs}\n")
        snakemake(tmp_path / "w2", "calibration", "-n", "-j1", "--configfile", str(cfg), env=env)


def test_english_only_local_model_refuses_other_languages(tmp_path):
    model_dir = tmp_path / "toy"
    demo.build_tiny_model(model_dir, d_model=32, english_only=True)
    with pytest.raises(ValueError, match=r"English-only.*de_de"):
        calibrate_decoder(str(model_dir), ["de_de_0000"], ["unused.npy"], [str(tmp_path / "out")], calib_settings())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flag, vocab, expected",
    [(True, 51865, True), (False, 51864, False), (None, 51865, True), (None, 51866, True), (None, 51864, False)],
)
def test_multilingual_follows_generation_config_and_vocabulary(tmp_path, flag, vocab, expected):
    """A checkpoint saved without `is_multilingual` must not lose its language tokens."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper", "vocab_size": vocab}))
    if flag is not None:
        (tmp_path / "generation_config.json").write_text(json.dumps({"is_multilingual": flag}))
    assert models.is_multilingual(str(tmp_path)) is expected


@pytest.mark.parametrize("flag, vocab", [(True, 51864), (False, 51865)])
def test_multilingual_flag_contradicting_the_vocabulary_is_refused(tmp_path, flag, vocab):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper", "vocab_size": vocab}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"is_multilingual": flag}))
    with pytest.raises(ValueError, match="is_multilingual"):
        models.is_multilingual(str(tmp_path))


def test_english_only_label_model_transcribes_english_and_refuses_others(tmp_path):
    """labels.model may be an `.en` checkpoint: English audio is its own translation."""
    import soundfile as sf
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=32,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51864,
        n_text_ctx=448,
        n_text_state=32,
        n_text_head=2,
        n_text_layer=1,
    )  # 51864: the English vocabulary, so openai-whisper sees an English-only model
    torch.manual_seed(0)
    model = Whisper(dims)
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    checkpoint = str(tmp_path / "tiny.en.pt")
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, checkpoint)
    tone = (0.1 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)
    for name in ("en_us_0000.wav", "de_de_0000.wav"):
        sf.write(tmp_path / name, tone, 16000)
    manifest, stamp = manifest_for([str(tmp_path / "en_us_0000.wav")], tmp_path, "000")
    out = labels.label_job(checkpoint, checkpoint, manifest, stamp, str(tmp_path / "en.json"), max_tokens=4)
    assert out["en_us_0000.wav"]["translation"] == out["en_us_0000.wav"]["transcription"]
    manifest, stamp = manifest_for([str(tmp_path / "de_de_0000.wav")], tmp_path, "001")
    with pytest.raises(ValueError, match="English-only"):
        labels.label_job(checkpoint, checkpoint, manifest, stamp, str(tmp_path / "de.json"), max_tokens=4)
