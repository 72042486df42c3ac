"""A folder that is not the Whisper it claims to be is refused before any job, naming
the config key and what is wrong: never a traceback, never a message about the Hub for
a local path.

models.check_model_source / check_model_folder run at parse time (JSON and safetensors
headers only); models.snapshot_model loads the weights and checks what transformers
reports (nothing missing, nothing newly initialised).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from whisper_mxq import demo, models

from conftest import offline_env, snakemake

pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def whisper_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "whisper-tiny-random"
    demo.build_tiny_model(folder)
    return folder


@pytest.fixture
def model(whisper_folder, tmp_path) -> Path:
    """A copy of the tiny Whisper to break."""
    return Path(shutil.copytree(whisper_folder, tmp_path / "whisper-copy"))


def edit_json(path: Path, **changes) -> None:
    value = json.loads(path.read_text())
    value.update(changes)
    path.write_text(json.dumps(value))


def refused(folder: Path | str, match: str, key: str = "model") -> str:
    with pytest.raises(ValueError) as caught:
        models.check_model_source(str(folder), key)
    message = str(caught.value)
    assert message.startswith(f"config key {key!r}: "), message
    assert match in message, message
    assert "huggingface" not in message.lower() and "hub" not in message.lower()
    return message


def test_a_whisper_folder_passes(whisper_folder):
    models.check_model_source(str(whisper_folder))


@pytest.mark.parametrize("value", ["./no-such-folder", "/no/such/whisper", "models/a/b", "../x/"])
def test_a_path_that_does_not_exist(tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    refused(value, "does not exist (nothing at ")


def test_a_hub_id_is_left_to_the_snapshot_job():
    models.check_model_source("openai/whisper-small")  # no network at parse time


def test_a_file_is_not_a_folder(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x")
    refused(f, "is a file, not a model folder")


def test_another_model_type(model):
    edit_json(model / "config.json", model_type="bart")
    refused(model, "holds a 'bart' model, not a Whisper (config.json model_type)")


@pytest.mark.parametrize("cfg", [{"model_type": "bert", "vocab_size": 30522}, {"model_type": "bert"}])
def test_a_bert_folder_is_called_a_bert_in_a_dry_run(tmp_path, cfg):
    """Whatever else config.json holds, the model type is what is named first (not
    "English-only", not "no integer vocab_size")."""
    folder = tmp_path / "bert-folder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    proc = snakemake(tmp_path, "-n", "--config", f"model={folder}", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"config key 'model': {folder} holds a 'bert' model, not a Whisper (config.json model_type)" in out
    assert "English-only" not in out and "vocab_size" not in out


def test_a_checkpoint_of_another_model_under_a_whisper_config(model, tmp_path):
    """A BART of the same width with a Whisper's config.json beside it: its weights have
    no audio convolutions (every Whisper weight would be newly initialised)."""
    from transformers import BartConfig, BartForConditionalGeneration

    bart = BartForConditionalGeneration(
        BartConfig(
            vocab_size=51865,
            d_model=64,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=128,
            decoder_ffn_dim=128,
        )
    )
    bart.save_pretrained(tmp_path / "bart")
    shutil.copy(tmp_path / "bart" / "model.safetensors", model / "model.safetensors")
    message = refused(model, "the weights lack Whisper's ['encoder.conv1.weight'")
    assert "a checkpoint of another model?" in message


def test_an_english_only_tokenizer_beside_a_multilingual_model(model):
    """Every prompt id would be off by one: <|startoftranscript|> is 50257 in the
    English-only vocabulary and 50258 in the multilingual one (openai-whisper's own
    tokenizers say so independently)."""
    from whisper.tokenizer import get_tokenizer

    english, multi = get_tokenizer(multilingual=False), get_tokenizer(multilingual=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        (model / f).unlink()
    demo.write_tokenizer(model, english_only=True)
    message = refused(
        model,
        f"the tokenizer's <|startoftranscript|> is id {english.sot} but config.json "
        f"decoder_start_token_id is {multi.sot}",
    )
    assert "English-only tokenizer beside a multilingual model" in message


def test_a_multilingual_tokenizer_beside_an_english_only_model(tmp_path):
    folder = tmp_path / "whisper-en"
    demo.build_tiny_model(folder, english_only=True)
    models.check_model_source(str(folder))
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        (folder / f).unlink()
    demo.write_tokenizer(folder)
    refused(folder, "the tokenizer has 51865 ids but the model's vocabulary (config.json vocab_size) 51864")


def test_generation_config_ids_that_disagree(model):
    generation = json.loads((model / "generation_config.json").read_text())
    generation["lang_to_id"]["<|de|>"] += 1
    (model / "generation_config.json").write_text(json.dumps(generation))
    refused(model, "the tokenizer's <|de|> is id 50261 but generation_config.json lang_to_id <|de|> is 50262")


def test_truncated_weights(model):
    weights = model / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])
    header = 8 + int.from_bytes(weights.read_bytes()[:8], "little")
    message = refused(model, "weights model.safetensors are truncated: tensor ")
    assert f"the file holds {size // 2 - header}" in message


def test_weights_cut_inside_the_header(model):
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    refused(model, "weights model.safetensors are unreadable (its header length")


@pytest.mark.parametrize(
    "vocab, match",
    [
        (10**9, "config.json vocab_size = 1000000000 is impossible for a Whisper"),
        (0, "config.json vocab_size = 0 is impossible"),
        ("51865", "config.json vocab_size = '51865' is impossible"),
        (51000, "weight decoder.embed_tokens.weight has shape [51865, 64], config.json implies [51000, 64]"),
    ],
)
def test_impossible_vocabulary_size(model, vocab, match):
    edit_json(model / "config.json", vocab_size=vocab)
    refused(model, match)


def test_layers_the_config_counts_but_the_weights_lack(model):
    edit_json(model / "config.json", decoder_layers=2)
    refused(model, "config.json counts 2 decoder layers, the weights hold layers [0]")


def test_feature_extractor_of_another_model(model):
    edit_json(model / "preprocessor_config.json", feature_size=128)
    refused(model, "the feature extractor makes 128 mel bins, the model takes 80")


def test_only_pickled_weights(model):
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    refused(model, "no model.safetensors (weights are read from safetensors only")


def test_shard_index_naming_a_file_outside_the_folder(model):
    (model / "model.safetensors").rename(model / "model-00001.safetensors")
    (model / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"model.encoder.conv1.weight": "../../elsewhere.safetensors"}})
    )
    refused(model, "model.safetensors.index.json names shards outside the folder")


def test_not_json(model):
    (model / "config.json").write_text("{not json")
    refused(model, "config.json is not readable JSON")


# --- the snapshot job: a full load ---------------------------------------------------------
def test_snapshot_writes_a_checked_folder_both_transformers_read(whisper_folder, tmp_path):
    out = tmp_path / "models" / "whisper-tiny-random"
    models.snapshot_model(str(whisper_folder), str(out))
    models.check_model_folder(str(out))
    names = {p.name for p in out.iterdir()}
    assert {"tokenizer.json", "vocab.json", "merges.txt", "preprocessor_config.json"} <= names
    assert "processor_config.json" not in names  # transformers 4.50 fails on 5's nested form
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert "extra_special_tokens" not in config or isinstance(config["extra_special_tokens"], dict)


def test_snapshot_refuses_weights_that_would_be_newly_initialised(model, tmp_path):
    """Weights that pass the header checks but lack a tensor: transformers would
    initialise it at random; the snapshot job refuses, naming it."""
    from safetensors.torch import load_file, save_file

    weights = load_file(model / "model.safetensors")
    del weights["model.encoder.layer_norm.weight"]
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    models.check_model_source(str(model))  # the cheap checks cannot tell
    with pytest.raises(
        ValueError,
        match=r"config key 'model': .* 1 weights missing \(they would be newly "
        r"initialised at random\): model.encoder.layer_norm.weight",
    ):
        models.snapshot_model(str(model), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_snapshot_of_a_bad_folder_fails_with_the_cheap_check_first(model, tmp_path):
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ValueError, match="config key 'labels.model': .* are truncated"):
        models.snapshot_model(str(model), str(tmp_path / "out"), key="labels.model")


def test_snapshot_of_an_unknown_hub_id_names_the_key(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # read once at import: the variable alone would come too late in this process
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"config key 'model': 'nobody/no-such-whisper' is neither a local model "
        r"folder \(nothing at .*\) nor a model the Hub serves here",
    ):
        models.snapshot_model("nobody/no-such-whisper", str(tmp_path / "out"))


# --- before any job --------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "english-tokenizer"])
def test_snakemake_stops_before_any_job_naming_the_key(model, tmp_path, case):
    """The parse-time check (common.smk) stops the run before a job, without a traceback."""
    if case == "missing":
        value, match = str(tmp_path / "no-such-whisper"), "does not exist"
    else:
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
            (model / f).unlink()
        demo.write_tokenizer(model, english_only=True)
        value, match = str(model), "the tokenizer does not belong to this model"
    work = tmp_path / "work"
    work.mkdir()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"model: {value}\nlanguages: [en_us]\n")
    proc = snakemake(work, "-n", "-j1", "--configfile", str(cfg), env=offline_env(double=False), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key 'model'" in out and match in out, out[-2000:]
    assert "Traceback" not in out
    assert sorted(p.name for p in work.iterdir()) in ([], [".snakemake"])
