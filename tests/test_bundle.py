"""The runtime bundle: what Mobilint's runtime loads, checked by loading it back offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from whisper_mxq import bundle, demo

from conftest import OFFLINE, copy_run, offline_env, snakemake

MODEL = "whisper-tiny-random"
TARGET = f"bundle/{MODEL}-mxq"
# Where Mobilint's runtime runs each part: the tutorial recipe's encoder scheme global4
# takes cluster 0, the decoder one core of cluster 1 (Mobilint's prepare_model.py puts
# the decoder on 1:0 of ARIES).
TUTORIAL_ARIES = {
    "encoder_core_mode": "global4",
    "encoder_target_clusters": [0],
    "encoder_target_device": "aries-rb",
    "encoder_dev_no": 0,
    "decoder_core_mode": "single",
    "decoder_target_cores": ["1:0"],
    "decoder_target_device": "aries-rb",
    "decoder_dev_no": 0,
}


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def check_bundle(folder: Path, source: Path, encoder_mxq: Path, decoder_mxq: Path, runtime: dict | None = None) -> None:
    """Config, processor, generation config and embeddings load offline and match `source`;
    the runtime keys are `runtime` (default: the tutorial recipe's on ARIES)."""
    import torch
    from safetensors.torch import load_file
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

    raw = json.loads((folder / "config.json").read_text())
    assert raw["model_type"] == "mobilint-whisper"
    assert raw["architectures"] == ["MobilintWhisperForConditionalGeneration"]
    assert raw["dev_no"] == 0
    want = runtime or TUTORIAL_ARIES
    assert {k: raw[k] for k in want} == want
    assert not {k for k in raw if k.endswith(("_target_cores", "_target_clusters", "_core_mode"))} - set(want)
    # auto_map -> the proxy, which only imports transformers-mblt's classes
    assert raw["auto_map"] == {
        "AutoConfig": "proxy_whisper.MobilintWhisperConfig",
        "AutoModelForSpeechSeq2Seq": "proxy_whisper.MobilintWhisperForConditionalGeneration",
    }
    proxy = (folder / "proxy_whisper.py").read_text()
    assert (
        "from transformers_mblt.models.whisper.modeling_whisper import MobilintWhisperForConditionalGeneration" in proxy
    )
    assert "def " not in proxy and "class " not in proxy
    fe = json.loads((folder / "preprocessor_config.json").read_text())
    assert fe["auto_map"] == {"AutoFeatureExtractor": "proxy_whisper.MobilintWhisperFeatureExtractor"}
    # readable by a runtime running as another user
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in folder.iterdir() if f.is_file())
    # transformers 4 (the runtime's) reads the special tokens as a list under this name only
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert not isinstance(tokenizer_config.get("extra_special_tokens"), list)
    assert raw["encoder_mxq_path"] == encoder_mxq.name and raw["decoder_mxq_path"] == decoder_mxq.name
    # file names inside the folder, and the compiled bytes
    assert (folder / raw["encoder_mxq_path"]).read_bytes() == encoder_mxq.read_bytes()
    assert (folder / raw["decoder_mxq_path"]).read_bytes() == decoder_mxq.read_bytes()

    base = WhisperConfig.from_pretrained(source, local_files_only=True)
    config = WhisperConfig.from_pretrained(folder, local_files_only=True)  # the base fields load
    for key in (
        "num_mel_bins",
        "d_model",
        "max_source_positions",
        "max_target_positions",
        "vocab_size",
        "decoder_layers",
        "encoder_layers",
        "decoder_start_token_id",
        "eos_token_id",
    ):
        assert getattr(config, key) == getattr(base, key), key

    # trust_remote_code=False: the folder's auto_map is for the runtime's users, not us
    processor = WhisperProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    want = WhisperProcessor.from_pretrained(source, local_files_only=True)
    assert processor.feature_extractor.feature_size == base.num_mel_bins
    assert processor.tokenizer.get_vocab() == want.tokenizer.get_vocab()
    text = "<|startoftranscript|><|notimestamps|> The weather is nice today.<|endoftext|>"
    assert processor.tokenizer.encode(text) == want.tokenizer.encode(text)
    audio = np.sin(np.arange(16000, dtype=np.float32) * 0.05)
    np.testing.assert_array_equal(
        processor.feature_extractor(audio, sampling_rate=16000, return_tensors="np").input_features,
        want.feature_extractor(audio, sampling_rate=16000, return_tensors="np").input_features,
    )
    assert (folder / "preprocessor_config.json").exists()  # what transformers 4.x reads
    assert GenerationConfig.from_pretrained(folder).to_dict() == GenerationConfig.from_pretrained(source).to_dict()

    weights = load_file(folder / "model.safetensors")
    assert sorted(weights) == sorted(bundle.EMBEDDINGS)
    model = WhisperForConditionalGeneration.from_pretrained(source, local_files_only=True)
    decoder = model.get_decoder()
    assert torch.equal(weights["model.decoder.embed_tokens.weight"], decoder.embed_tokens.weight)
    assert torch.equal(weights["model.decoder.embed_positions.weight"], decoder.embed_positions.weight)
    assert not list(folder.parent.glob(".*"))  # no staging folder left beside it


# --- through the workflow ---------------------------------------------------------------


@pytest.mark.slow
def test_bundle_target_builds_from_the_demo_run(demo_run, tmp_path):
    work = copy_run(demo_run, tmp_path / "run")
    compiled = {p: work / f"compiled/{MODEL}_{p}.mxq" for p in ("encoder", "decoder")}
    before = {p: f.stat().st_mtime_ns for p, f in compiled.items()}
    proc = snakemake(work, TARGET, "-j2", "--configfile", str(OFFLINE))
    jobs = proc.stdout + proc.stderr
    assert "rule bundle" in jobs and "rule mxq" not in jobs  # only the bundle job ran
    assert {p: f.stat().st_mtime_ns for p, f in compiled.items()} == before
    folder = work / TARGET
    check_bundle(folder, work / "demo/whisper-tiny-random", compiled["encoder"], compiled["decoder"])
    assert (folder / compiled["decoder"].name).read_bytes().startswith(b"QBCOMPILER-TEST-DOUBLE")
    # rebuilt only when an input changes
    dry = snakemake(work, TARGET, "-n", "-j2", "--configfile", str(OFFLINE))
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_bundle_target_fails_at_once_without_qbcompiler(tmp_path):
    """The compile's first job (nothing before it with one job slot) says what to install."""
    proc = snakemake(tmp_path, TARGET, "-j1", "--configfile", str(OFFLINE), env=offline_env(double=False), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule qbcompiler" in out and "dl.mobilint.com" in out
    assert not (tmp_path / "demo").exists() and not (tmp_path / "bundle").exists()


# --- the package function alone ------------------------------------------------------------


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("snapshot") / "whisper-toy"
    demo.build_tiny_model(out, num_mel_bins=128, d_model=32)
    return out


@pytest.fixture
def mxq(tmp_path) -> tuple[Path, Path]:
    enc, dec = tmp_path / "whisper-toy_encoder.mxq", tmp_path / "whisper-toy_decoder.mxq"
    enc.write_bytes(b"encoder binary\x00\x01")
    dec.write_bytes(b"decoder binary\x00\x02")
    return enc, dec


def test_build_bundle_from_a_sharded_snapshot(snapshot, mxq, tmp_path):
    """Big checkpoints are saved in shards (large-v3 in fp32 is over 6 GB): the tables are
    found through the index and read alone."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    sharded = tmp_path / "sharded"
    WhisperForConditionalGeneration.from_pretrained(snapshot).save_pretrained(sharded, max_shard_size="1MB")
    WhisperProcessor.from_pretrained(snapshot).save_pretrained(sharded)
    assert (sharded / bundle.SAFETENSORS_INDEX).exists()
    out = tmp_path / "bundle" / "whisper-toy-mxq"
    bundle.build_bundle(str(sharded), str(mxq[0]), str(mxq[1]), str(out))
    check_bundle(out, snapshot, *mxq)


def test_failed_build_keeps_the_previous_bundle(snapshot, mxq, tmp_path):
    out = tmp_path / "bundle" / "whisper-toy-mxq"
    bundle.build_bundle(str(snapshot), str(mxq[0]), str(mxq[1]), str(out))
    before = _mtimes(out)
    with pytest.raises(FileNotFoundError):
        bundle.build_bundle(str(snapshot), str(mxq[0]), str(tmp_path / "missing.mxq"), str(out))
    assert _mtimes(out) == before
    assert not list(out.parent.glob(".*"))
    # a rebuild replaces a complete bundle in one step
    mxq[0].write_bytes(b"recompiled encoder")
    bundle.build_bundle(str(snapshot), str(mxq[0]), str(mxq[1]), str(out))
    assert (out / mxq[0].name).read_bytes() == b"recompiled encoder"
    assert not list(out.parent.glob(".*"))


def test_runtime_config_keeps_base_and_adds_runtime_keys():
    base = {
        "model_type": "whisper",
        "d_model": 768,
        "_name_or_path": "/home/me/models/x",
        "architectures": ["WhisperForConditionalGeneration"],
    }
    cfg = bundle.runtime_config(base, "m_encoder.mxq", "m_decoder.mxq")
    assert cfg == {
        "model_type": "mobilint-whisper",
        "d_model": 768,
        "encoder_mxq_path": "m_encoder.mxq",
        "decoder_mxq_path": "m_decoder.mxq",
        "dev_no": 0,
        "architectures": ["MobilintWhisperForConditionalGeneration"],
        "auto_map": bundle.AUTO_MAP,
        **TUTORIAL_ARIES,
    }
    with pytest.raises(ValueError, match="not a Whisper config"):
        bundle.runtime_config({"model_type": "bert"}, "a.mxq", "b.mxq")


# Mobilint's prepare_model.py (STT) for binaries compiled with its compile_config.py
# (scheme all on ARIES, single on REGULUS): single core mode, encoder on core 0:0,
# decoder on 1:0 of ARIES and 0:0 of REGULUS. A cluster-wide scheme takes its cluster.
@pytest.mark.parametrize(
    "target, schemes, want",
    [
        (
            "aries-rb",
            {"encoder": "all", "decoder": "all"},
            {
                "encoder": ("single", "encoder_target_cores", ["0:0"]),
                "decoder": ("single", "decoder_target_cores", ["1:0"]),
            },
        ),
        (
            "regulus-rb",
            {"encoder": "single", "decoder": "single"},
            {
                "encoder": ("single", "encoder_target_cores", ["0:0"]),
                "decoder": ("single", "decoder_target_cores", ["0:0"]),
            },
        ),
        (
            "aries-rb",
            {"encoder": "global8", "decoder": "multi"},
            {
                "encoder": ("global8", "encoder_target_clusters", [0, 1]),
                "decoder": ("multi", "decoder_target_clusters", [1]),
            },
        ),
    ],
)
def test_placement_follows_the_compiled_scheme(target, schemes, want):
    keys = bundle.placement(target, schemes, dev_no=2)
    for part, (mode, field, where) in want.items():
        assert keys[f"{part}_core_mode"] == mode and keys[field] == where
        assert keys[f"{part}_target_device"] == target and keys[f"{part}_dev_no"] == 2
    assert len(keys) == 8


@pytest.mark.slow
def test_bundle_follows_the_compile_settings(demo_run, tmp_path):
    """A REGULUS compile gives a REGULUS bundle, without touching the ARIES one's rules."""
    work = copy_run(demo_run, tmp_path / "run")
    over = tmp_path / "over.yaml"
    over.write_text(json.dumps({"compile": {"device": "cpu", "target_device": "regulus-rb"}, "bundle": {"dev_no": 1}}))
    snakemake(
        work, TARGET, "-j2", "--configfile", str(OFFLINE), str(over), env=offline_env(QBCOMPILER_DOUBLE_VERSION="1.2.0")
    )
    raw = json.loads((work / TARGET / "config.json").read_text())
    for part in ("encoder", "decoder"):
        assert (raw[f"{part}_core_mode"], raw[f"{part}_target_cores"]) == ("single", ["0:0"])
        assert (raw[f"{part}_target_device"], raw[f"{part}_dev_no"]) == ("regulus-rb", 1)
        info = (work / TARGET / f"{MODEL}_{part}.mxq").read_bytes()
        assert b'"target_device": "regulus-rb"' in info and b'"inference_scheme": "single"' in info
