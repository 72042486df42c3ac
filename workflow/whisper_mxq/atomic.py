"""Atomic writers: a file appears under its final name complete, or not at all.

A job killed halfway (SIGKILL, full disk) leaves only a hidden temporary file that no
later step lists or reads.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place on success.

    The temporary name keeps the final suffix (some writers check it) and starts with a
    dot, so shell globs such as `sample_*` or `*.npy` skip it (pathlib's glob does not;
    the workflow lists explicit paths, never globs).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=final.parent, prefix=f".{final.name}.", suffix=suffix or final.suffix or ".tmp"
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes files 0600; give the result the mode a plain open() would.
        tmp_path.chmod(0o666 & ~_umask())
        os.replace(tmp_path, final)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        # A bare "[Errno 28] No space left on device" names no file; say which one.
        message = f"cannot write {final}: {e.strerror or e}"
        raise (OSError(e.errno, message) if e.errno else OSError(message)) from e
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden sibling folder; it replaces `path` only once the body succeeds.

    A killed job leaves a dot-folder nobody lists instead of a half-written model. An
    existing `path` is moved aside first because os.replace cannot overwrite a non-empty
    folder.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the result should look like mkdir's
    try:
        yield tmp
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old."))
            os.replace(final, old / final.name)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """`durable`: fsync before the rename, so the file also survives a power cut. The
    rename alone already keeps a killed job from leaving a partial file under the final
    name; bulk per-sample arrays skip the fsync (see calibration._write_samples)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), durable)


def write_json(path: str | os.PathLike, obj: Any, durable: bool = True) -> None:
    # Sorted keys and a fixed indent: the same content gives the same bytes.
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n", durable)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file; a truncated or corrupt one raises naming the path."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e


def write_npy(path: str | os.PathLike, array: np.ndarray, durable: bool = True) -> None:
    # Serialised in memory first: np.save into a file reports a full disk as "N requested
    # and M written" with no errno, where a plain write says ENOSPC.
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    write_bytes(path, buf.getvalue(), durable)


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """Load an array; never unpickles. A truncated file raises naming the path."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy file ({e})") from e
