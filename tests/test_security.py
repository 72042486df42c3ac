"""Security: no remote code, no unpickling, safetensors only, no path leaves the workdir."""

from __future__ import annotations

import ast
import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest

from whisper_mxq import atomic, encoder_calibration, layout, models

import reliability
from conftest import REPO, offline_env, snakemake


@pytest.fixture(scope="session")
def finished_run(request) -> Path:
    return reliability.finished_run(request)


CODE = sorted([*(REPO / "workflow").rglob("*.py"), *(REPO / "workflow").rglob("*.smk"), REPO / "Snakefile"])
PYTHON = [p for p in CODE if p.suffix == ".py"]


def _calls(name: str):
    """(file, call) for every call of `<something>.name(...)` in the package and scripts."""
    for path in PYTHON:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                yield path, node


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


# --- static checks ----------------------------------------------------------------------
def test_no_call_trusts_remote_code():
    """No call in the workflow passes trust_remote_code (the runtime bundle names a proxy
    module for its users' loaders, which is text the workflow writes, not code it runs)."""
    hits = [
        f"{p.relative_to(REPO)}:{node.lineno}"
        for p in PYTHON
        for node in ast.walk(ast.parse(p.read_text(), str(p)))
        if isinstance(node, ast.Call) and any(k.arg == "trust_remote_code" for k in node.keywords)
    ]
    assert hits == []
    smk = [str(p.relative_to(REPO)) for p in CODE if p.suffix != ".py" and "trust_remote_code" in p.read_text()]
    assert smk == []


def test_every_np_load_refuses_pickles():
    calls = [(p, c) for p, c in _calls("load") if ast.unparse(c.func) in ("np.load", "numpy.load")]
    assert calls, "expected np.load calls (atomic.read_npy, encoder_calibration.check_npy)"
    bad = [f"{p.relative_to(REPO)}:{c.lineno}" for p, c in calls if _keyword(c, "allow_pickle") is not False]
    assert bad == []


def test_every_torch_load_is_weights_only():
    calls = [(p, c) for p, c in _calls("load") if ast.unparse(c.func) == "torch.load"]
    bad = [f"{p.relative_to(REPO)}:{c.lineno}" for p, c in calls if _keyword(c, "weights_only") is not True]
    assert bad == []
    assert not any(ast.unparse(c.func) in ("pickle.load", "pickle.loads") for _, c in _calls("load"))


def test_openai_whisper_load_model_is_weights_only():
    """The label model goes through whisper.load_model, which must not unpickle code."""
    import whisper

    source = inspect.getsource(whisper.load_model)
    assert '"weights_only": True' in source or "weights_only=True" in source


def test_every_model_from_pretrained_is_safetensors_only():
    calls = [
        (p, c)
        for p, c in _calls("from_pretrained")
        if "ForConditionalGeneration" in ast.unparse(c.func) or "Model" in ast.unparse(c.func)
    ]
    assert calls
    bad = [f"{p.relative_to(REPO)}:{c.lineno}" for p, c in calls if _keyword(c, "use_safetensors") is not True]
    assert bad == []


# --- behaviour --------------------------------------------------------------------------
def test_pickled_npy_is_refused(tmp_path):
    npy = tmp_path / "calibration" / "encoder" / "encoder_calib_en_us_0000.npy"
    npy.parent.mkdir(parents=True)
    np.save(npy, np.array([{"payload": "runs on load"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=f"{npy}: not a readable .npy file"):
        atomic.read_npy(npy)
    with pytest.raises(ValueError, match=str(npy)):
        encoder_calibration.check_npy(str(npy), (1, 3000, 80))


@pytest.mark.slow
def test_model_with_only_pytorch_model_bin_is_refused(finished_run, tmp_path):
    """A pickled checkpoint (pytorch_model.bin, no model.safetensors) is never loaded."""
    import torch
    from safetensors.torch import load_file

    src = finished_run / "models" / "whisper-tiny-random"
    model = tmp_path / "whisper-pickled"
    shutil.copytree(src, model)
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    with pytest.raises((OSError, ValueError), match="safetensors"):
        models.snapshot_model(str(model), str(tmp_path / "models" / "whisper-pickled"))
    assert not (tmp_path / "models" / "whisper-pickled").exists()
    with pytest.raises((OSError, ValueError), match="safetensors"):
        models.load_model(str(model))


@pytest.mark.parametrize("path", ["../out", "/tmp/out", "a/../../out", "..", "demo/../../out"])
def test_inside_workdir_refuses_escapes(path):
    with pytest.raises(ValueError, match="leaves the working directory"):
        layout.inside_workdir(path, "demo.model")


@pytest.mark.parametrize("path", ["demo/model", "a/../b", "./x"])
def test_inside_workdir_keeps_relative_paths(path):
    assert layout.inside_workdir(path, "demo.model") == path


@pytest.mark.parametrize("model", ["..", "x/..", ".", "/"])
def test_model_name_never_escapes_models_folder(model):
    with pytest.raises(ValueError, match="config key 'model'"):
        layout.model_name(model)


def test_names_from_local_paths_stay_inside_models_folder():
    assert layout.MODEL_SNAPSHOT.format(model=layout.model_name("../../x/whisper-small/")) == "models/whisper-small"
    assert (
        layout.LABEL_MODEL.format(label_model=layout.label_model_name("/../../tiny.pt"))
        == "models/openai-whisper/tiny.pt"
    )


@pytest.mark.parametrize(
    "override, key",
    [
        ("languages: ['/etc']", "languages"),
        ("fleurs: {split: '../x'}", "split"),
        ("model: 'x/..'", "model"),
        ("demo: {model: ../escaped, label_model: x.pt, fleurs: f}", "demo.model"),
    ],
)
def test_config_paths_that_escape_fail_before_any_job(tmp_path, override, key):
    """Language codes, split, model name and demo output paths are checked at parse
    time; the run stops before writing anything, naming the key."""
    work = tmp_path / "work"
    work.mkdir()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(override + "\n")
    proc = snakemake(work, "-n", "-j1", "--configfile", str(cfg), env=offline_env(double=False), check=False)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr
    assert sorted(p.name for p in work.iterdir()) in ([], [".snakemake"])
    assert not (tmp_path / "escaped").exists()


def test_rule_scripts_find_the_package_without_it_installed(tmp_path):
    """A rule's script imports `_paths` (Snakemake puts the scripts' folder on sys.path)
    and then the package, also where the package is not installed (a conda env, a cluster
    node): here Python starts isolated, without site-packages or PYTHONPATH."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import _paths; "
        "import whisper_mxq.layout as layout; print(layout.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(REPO / "workflow" / "scripts")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == str(REPO / "workflow" / "whisper_mxq" / "layout.py")
    scripts = [p for p in (REPO / "workflow" / "scripts").glob("*.py") if p.name != "_paths.py"]
    assert scripts and all(p.read_text().startswith("import _paths") for p in scripts)
