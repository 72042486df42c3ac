"""The tutorial's pinned stack runs the model-facing steps: in a venv built from
envs/*.yaml by tests/envs/pinned.sh (transformers 4.50.0), the offline demo's snapshot,
labels, calibration, compile (through the qbcompiler test double) and bundle, and what
it writes is read by the transformers this suite runs under (5) and vice versa.

The venv: $WHISPER_MXQ_PINNED_VENV, else ~/.cache/whisper-mxq/pinned-venv; the test
skips, saying so, where it has not been built.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from whisper_mxq import audio, demo, encoder_calibration, layout

from conftest import DOUBLE, OFFLINE, REPO, snakemake_cmd

pytestmark = pytest.mark.slow

VENV = Path(os.environ.get("WHISPER_MXQ_PINNED_VENV") or Path.home() / ".cache" / "whisper-mxq" / "pinned-venv")
PYTHON = VENV / "bin" / "python"
MODEL = "whisper-tiny-random"


def pinned(package: str) -> str:
    env = yaml.safe_load((REPO / "envs" / "calibration.yaml").read_text())
    pips = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return next(r.split("==")[1] for r in pips if r.startswith(f"{package}=="))


def venv_env() -> dict:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([str(REPO / "workflow"), str(DOUBLE)]),
    )
    env.pop("WHISPER_MXQ_SAMPLES_PER_JOB", None)
    return env


def venv_run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(PYTHON), *args], env=venv_env(), capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def pinned_run(tmp_path_factory) -> Path:
    if not PYTHON.exists():
        pytest.skip(f"no pinned-stack venv at {VENV}: build it with tests/envs/pinned.sh {VENV}")
    version = venv_run("-c", "import transformers; print(transformers.__version__)", check=True).stdout.strip()
    assert version == pinned("transformers")
    work = tmp_path_factory.mktemp("pinned")
    small = work / "small.yaml"  # two languages, one job: the stack is the point, not the scale
    small.write_text(
        json.dumps({"languages": ["en_us", "de_de"], "samples_per_language": 2, "calibration": {"samples_per_job": 4}})
    )
    targets = ["labels", "calibration", layout.BUNDLE.format(model=MODEL)]
    proc = subprocess.run(
        snakemake_cmd(work, "-j2", *targets, "--configfile", str(OFFLINE), str(small), python=PYTHON),
        env=venv_env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return work


def test_pinned_stack_runs_the_model_facing_steps(pinned_run):
    work = pinned_run
    for lang in ("en_us", "de_de"):
        for i in range(2):
            sample = layout.sample_id(lang, i)
            assert (work / layout.ENCODER_NPY.format(sample=sample)).stat().st_size > 0
            assert (work / layout.DECODER_DECODER_STATES.format(sample=sample)).stat().st_size > 0
    assert len((work / layout.ENCODER_LIST).read_text().split()) == 4
    assert set(json.loads((work / layout.TRANSCRIPTIONS).read_text())) == {
        f"{layout.sample_id(lang, i)}.wav" for lang in ("en_us", "de_de") for i in range(2)
    }
    bundle = work / layout.BUNDLE.format(model=MODEL)
    assert {f"{MODEL}_encoder.mxq", f"{MODEL}_decoder.mxq", "config.json"} <= {p.name for p in bundle.iterdir()}
    # Written by the pinned transformers, not the one running this test.
    snapshot = json.loads((work / layout.MODEL_SNAPSHOT.format(model=MODEL) / "config.json").read_text())
    assert snapshot["transformers_version"] == pinned("transformers")


def test_pinned_features_match_this_stack(pinned_run):
    """The encoder features transformers 4.50 wrote equal the ones this suite's
    transformers computes from the same clip and snapshot."""
    work = pinned_run
    snapshot = str(work / layout.MODEL_SNAPSHOT.format(model=MODEL))
    fe = encoder_calibration.feature_extractor(snapshot)
    for sample in ("en_us_0000", "de_de_0001"):
        ours = encoder_calibration.encoder_features(fe, audio.load(work / layout.AUDIO.format(sample=sample)))
        theirs = np.load(work / layout.ENCODER_NPY.format(sample=sample), allow_pickle=False)
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4)


def test_files_written_under_one_version_load_under_the_other(pinned_run, tmp_path):
    """The snapshot saved under 4.50 loads here with the same tokenizer ids as the demo
    model built here; and a folder built here loads under 4.50 with those ids."""
    from transformers import WhisperProcessor

    from whisper_mxq import models

    snapshot = pinned_run / layout.MODEL_SNAPSHOT.format(model=MODEL)
    models.check_model_folder(str(snapshot))
    here = tmp_path / "here"
    demo.build_tiny_model(here)
    text = "Das Wetter ist heute schön. The weather is nice today."
    tokens = ["<|startoftranscript|>", "<|de|>", "<|translate|>", "<|notimestamps|>", "<|0.00|>"]
    ids = {}
    for name, folder in (("theirs", snapshot), ("ours", here)):
        tok = WhisperProcessor.from_pretrained(folder, local_files_only=True).tokenizer
        ids[name] = (tok.encode(text, add_special_tokens=False), tok.convert_tokens_to_ids(tokens), len(tok))
    assert ids["theirs"] == ids["ours"]
    code = (
        "import sys; from transformers import WhisperProcessor, WhisperForConditionalGeneration as W;"
        "t = WhisperProcessor.from_pretrained(sys.argv[1], local_files_only=True).tokenizer;"
        "W.from_pretrained(sys.argv[1], use_safetensors=True);"
        f"print(t.encode({text!r}, add_special_tokens=False), t.convert_tokens_to_ids({tokens!r}), len(t))"
    )
    out = venv_run("-c", code, str(here), check=True).stdout.strip().splitlines()[-1]
    assert out == f"{ids['ours'][0]} {ids['ours'][1]} {ids['ours'][2]}"


def test_pinned_tokenizer_ids_equal_openai_whispers():
    """tests/test_tokenizer.py's comparison, run under the pinned transformers."""
    if not PYTHON.exists():
        pytest.skip(f"no pinned-stack venv at {VENV}: build it with tests/envs/pinned.sh {VENV}")
    proc = venv_run(str(REPO / "tests" / "test_tokenizer.py"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    clean = {"texts": [], "specials": {}, "size": 0}
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        kind: {"fast": clean, "slow": clean} for kind in ("multilingual", "english")
    }
