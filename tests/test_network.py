"""The calibrate job's own Whisper network (whisper_mxq/network.py) against transformers'
WhisperForConditionalGeneration: the same encoder states and the same greedy tokens, on
trained weights and real speech; a calibrate job that never imports transformers' model
classes; weights that do not fit the config refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from realmodel import build, multilingual
from realmodel.fixtures import multilingual_dir, realmodel_dir  # noqa: F401
from safetensors.torch import load_file, save_file

from whisper_mxq import audio, data, demo, layout, models, network
from whisper_mxq import decoder_calibration as dec
from whisper_mxq import encoder_calibration as enc

from calib_helpers import calib_settings, greedy_once, manifest_for
from conftest import offline_env


def _speech(folder, langs: list[str], split: str):
    """Log-mel features [B, n_mels, 3000] of the first clip of each language."""
    fe = enc.feature_extractor(str(folder))
    source = data.Source(str(folder.parent / build.FLEURS_DIR), split)
    rows = [next(data.stream_rows(source, lang)) for lang in langs]
    feats = [enc.encoder_features(fe, audio.prepare(r["audio"]["bytes"], r["path"])) for r in rows]
    return torch.from_numpy(np.concatenate(feats)).transpose(1, 2).contiguous()


def _both(snapshot):
    return network.load(str(snapshot)), models.load_model(str(snapshot))


def _assert_same_network(ours, theirs, feats, tasks: list[tuple], prompt, tokens: int):
    """tasks: (language, task) pairs, (None, None) for an English-only model; prompt(lang,
    task) the workflow's prompt ids. transformers' generate runs its own encoder and
    builds its own prompt from the language and task."""
    with torch.no_grad():
        mine = ours.get_encoder()(feats).last_hidden_state
        ref = theirs.get_encoder()(feats).last_hidden_state
    torch.testing.assert_close(mine, ref, rtol=1e-6, atol=1e-6)
    eot = theirs.generation_config.eos_token_id
    for language, task in tasks:
        options = {"language": language, "task": task} if language else {}
        with torch.no_grad():
            want = theirs.generate(input_features=feats, max_new_tokens=tokens, **options).tolist()
        got = greedy_once(ours, mine, prompt(language, task), tokens)
        assert [dec.text_ids(g, eot) for g in got] == [dec.text_ids(w, eot) for w in want], (language, task)
        assert any(dec.text_ids(g, eot) for g in got), "no text decoded: the comparison shows nothing"


def test_trained_english_model_same_states_and_tokens(realmodel_dir):
    snapshot = realmodel_dir / build.MODEL_DIR
    ours, theirs = _both(snapshot)
    feats = _speech(snapshot, ["en_us"], build.CALIBRATION_SPLIT)
    tok = models.load_tokenizer(str(snapshot))
    _assert_same_network(
        ours, theirs, feats, [(None, None)], lambda *_: dec.prompt(tok, "en", "transcribe", False).ids, 24
    )


@pytest.mark.slow
def test_trained_multilingual_model_same_states_and_tokens(multilingual_dir):
    snapshot = multilingual_dir / multilingual.MODEL_DIR
    ours, theirs = _both(snapshot)
    langs = ["de_de", "sv_se", "ja_jp"]
    feats = _speech(snapshot, langs, build.CALIBRATION_SPLIT)
    tok = models.load_tokenizer(str(snapshot))
    tasks = [("de", "transcribe"), ("de", "translate")]
    _assert_same_network(ours, theirs, feats, tasks, lambda lang, task: dec.prompt(tok, lang, task, True).ids, 24)


def test_tokenizer_alone_equals_the_processors(tmp_path):
    demo.build_tiny_model(tmp_path / "model")
    alone = models.load_tokenizer(str(tmp_path / "model"))
    processor = models.load_processor(str(tmp_path / "model")).tokenizer
    text = "Guten Tag, wie geht's? 1 2 3"
    assert alone.encode(text) == processor.encode(text)
    assert dec.prompt(alone, "de", "translate", True) == dec.prompt(processor, "de", "translate", True)
    assert type(alone) is type(processor)
    ids = alone.encode(text)
    assert alone.decode(ids, skip_special_tokens=False) == processor.decode(ids, skip_special_tokens=False)


def test_a_calibrate_job_imports_no_model_classes(tmp_path):
    """A calibrate job in a fresh process, as Snakemake starts one: it calibrates its
    samples and loads none of transformers' modeling modules, nor torch._dynamo (which
    they, and torch's meta-device init, pull in): seconds of a job's start."""
    demo.build_tiny_model(tmp_path / "model")
    samples = [layout.sample_id("de_de", i) for i in range(3)]
    wavs = [str(tmp_path / f"{s}.wav") for s in samples]
    for i, wav in enumerate(wavs):
        sf.write(wav, 0.1 * np.sin(np.arange(16000 * (i + 1)) / (3 + i)), 16000)
    manifest, stamp = manifest_for(wavs, tmp_path)
    job = {
        "snapshot": str(tmp_path / "model"),
        "manifest_path": manifest,
        "stamp_path": stamp,
        "features_paths": [str(tmp_path / f"{s}.npy") for s in samples],
        "sample_dirs": [str(tmp_path / s) for s in samples],
        "summary_path": str(tmp_path / "summary.json"),
    }
    code = (
        "import json, sys; from whisper_mxq import calibration; "
        "settings = calibration.Settings(**json.loads(sys.argv[2])); "
        "calibration.calibrate_job(**json.loads(sys.argv[1]), settings=settings); "
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch._dynamo' or "
        "m.startswith('transformers') and 'modeling' in m)))"
    )
    settings = json.dumps(vars(calib_settings()))
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(job), settings], env=offline_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [e["sample"] for e in json.loads((tmp_path / "summary.json").read_text())["samples"]] == samples
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"a calibrate job imported {loaded}"


@pytest.fixture
def tiny(tmp_path):
    demo.build_tiny_model(tmp_path / "model")
    return tmp_path / "model"


def test_a_missing_tensor_is_named(tiny):
    path = tiny / network.WEIGHTS
    weights = load_file(path)
    del weights["model.encoder.layers.0.fc1.weight"]
    save_file(weights, path)
    with pytest.raises(ValueError, match=r"model\.safetensors.*missing \['model\.encoder\.layers\.0\.fc1\.weight'\]"):
        network.load(str(tiny))


def test_weights_of_another_size_are_refused(tiny):
    cfg = json.loads((tiny / network.CONFIG).read_text())
    cfg["encoder_ffn_dim"] *= 2
    (tiny / network.CONFIG).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"misshaped \[\('model\.encoder\.layers\.0\.fc1\.weight'"):
        network.load(str(tiny))


def test_a_config_that_is_no_whisper_is_refused(tiny, tmp_path):
    other = shutil.copytree(tiny, tmp_path / "other")
    cfg = json.loads((other / network.CONFIG).read_text())
    del cfg["decoder_layers"]
    (other / network.CONFIG).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"config\.json: no integer \['decoder_layers'\]"):
        network.load(str(other))
