"""The demo's bundle loaded by Mobilint's real client (transformers-mblt and
mobilint-qb-runtime from PyPI, in their own environment: tests/runtime/make_env.sh), with
only qbruntime's device calls replaced by recorders (tests/runtime/npu_recorder.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import OFFLINE, REPO, copy_run, offline_env, snakemake

MODEL = "whisper-tiny-random"
BUNDLE = f"bundle/{MODEL}-mxq"
RUNTIME = REPO / "tests" / "runtime"
VENV = Path(os.environ.get("WHISPER_MXQ_RUNTIME_VENV", Path.home() / ".cache/whisper-mxq/runtime-venv"))


def runtime_python() -> Path:
    python = VENV / "bin" / "python"
    if not (VENV / ".whisper-mxq-runtime").exists() or not python.exists():
        pytest.skip(f"no runtime environment at {VENV}: build it with tests/runtime/make_env.sh {VENV}")
    return python


def run_in_runtime(script: str, *args, tmp_path: Path) -> dict:
    """tests/runtime/<script> ARGS... OUT in the runtime environment; OUT's JSON."""
    out = tmp_path / "runtime.json"
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_MODULES_CACHE=str(tmp_path / "modules"),
        PYTHONPATH="",
    )
    proc = subprocess.run(
        [str(runtime_python()), str(RUNTIME / script), *map(str, args), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads(out.read_text())


# (recipe and board) -> what the runtime must read and do: per part (core mode, cores or clusters)
CASES = {
    "tutorial-aries": (
        {"device": "cpu"},
        "1.0.1",
        "aries-rb",
        {"encoder": ("global4", [], ["0:0"]), "decoder": ("single", ["0:1:0"], [])},
        {"encoder": ("Global4", [], [0]), "decoder": ("Single", ["1:0"], [])},
    ),
    "mobilint-regulus": (
        {"device": "cpu", "recipe": "mobilint-1.3", "target_device": "regulus-rb"},
        "1.3.0",
        "regulus-rb",
        {"encoder": ("single", ["0:0:0"], []), "decoder": ("single", ["0:0:0"], [])},
        {"encoder": ("Single", ["0:0"], []), "decoder": ("Single", ["0:0"], [])},
    ),
}


_BUILT: dict[str, Path] = {}  # test_npu.py imports the fixture: one build for both files


@pytest.fixture(scope="session")
def runtime_bundles(demo_run, tmp_path_factory) -> dict[str, Path]:
    """The demo compiled and bundled per case, once for this file and test_npu.py."""
    runtime_python()
    runs = _BUILT
    for case, (compile_cfg, version, *_) in CASES.items():
        if case in runs:
            continue
        work = copy_run(demo_run, tmp_path_factory.mktemp(case) / "run")
        over = work / "over.yaml"
        over.write_text(json.dumps({"compile": compile_cfg}))
        env = offline_env(QBCOMPILER_DOUBLE_VERSION=version)
        snakemake(work, BUNDLE, "-j2", "--forcerun", "mblt", "--configfile", str(OFFLINE), str(over), env=env)
        runs[case] = work
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_real_runtime_loads_the_bundle_and_feeds_calibrated_shapes(runtime_bundles, tmp_path, case):
    _, _, target, config_keys, device_calls = CASES[case]
    work = runtime_bundles[case]
    seen = run_in_runtime("check_bundle.py", work / BUNDLE, work / f"models/{MODEL}", tmp_path=tmp_path)

    # the runtime's own reading of config.json, loaded through auto_map and the proxy
    config = seen["config"]
    assert (
        config["class"] == "MobilintWhisperConfig" and seen["model_class"] == "MobilintWhisperForConditionalGeneration"
    )
    for part, (mode, cores, clusters) in config_keys.items():
        assert (config[f"{part}_core_mode"], config[f"{part}_target_cores"], config[f"{part}_target_clusters"]) == (
            mode,
            cores,
            clusters,
        )
        assert config[f"{part}_target_device"] == target and config[f"{part}_dev_no"] == 0
        assert config[f"{part}_mxq_path"] == f"{MODEL}_{part}.mxq"

    calls = seen["calls"]
    accelerators = [c for c in calls if c["call"] == "Accelerator"]
    assert accelerators and all(c == {"call": "Accelerator", "device_name": target, "dev_no": 0} for c in accelerators)
    for c in (c for c in calls if c["call"] == "Model"):
        part = "encoder" if c["path"].endswith("_encoder.mxq") else "decoder"
        assert Path(c["path"]).parent == work / BUNDLE
        assert (c["core_mode"], c["core_ids"], c["clusters"]) == device_calls[part]

    # every NPU call gets the calibration's shapes (read from the demo's own files)
    mel = np.load(next((work / "calibration/encoder").glob("*.npy"))).shape
    sample = next((work / "calibration/decoder").glob("sample_*"))
    enc_states = np.load(sample / "encoder_hidden_states.npy").shape
    d = np.load(sample / "decoder_hidden_states.npy").shape[-1]
    infers = [c for c in calls if c["call"] == "infer"]
    encoder = [c for c in infers if c["part"] == "encoder"]
    decoder = [c for c in infers if c["part"] == "decoder"]
    assert len(encoder) == 2 and all(c["shapes"] == [list(mel)] for c in encoder)  # generate + pipeline
    assert len(decoder) >= 2 * 8
    for c in decoder:
        embeds, states = c["shapes"]
        assert embeds[:2] == [1, 1] and embeds[3] == d and 1 <= embeds[2] <= 448
        assert states == [1, 1, *enc_states[1:]]
        assert c["dtypes"] == ["float32", "float32"]
    assert (
        decoder[0]["shapes"][0][2] == 4 and decoder[0]["cache_size"] == 0
    )  # <|sot|><|de|><|transcribe|><|notimestamps|>
    assert decoder[1]["cache_size"] == 4  # the KV cache on the device: one new token a step

    # the NPU stand-ins compute the float model: the runtime's host side (embedding tables,
    # positions, processor) must reproduce the float model's own decoding exactly
    assert seen["generate"]["npu"] == seen["generate"]["float"]
    assert seen["pipeline"]["npu"] == seen["pipeline"]["float"] and seen["pipeline"]["npu"].strip()
    assert seen["pipeline"]["feature_extractor"] == "MobilintWhisperFeatureExtractor"
