"""Atomic writers: a file appears under its final name complete, or not at all.

A job killed halfway (SIGKILL, full disk) leaves only a hidden temporary file that no
later step lists or reads.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    # Created with mode 0666 by os.open, which the kernel masks with the process umask:
    # the result gets the mode a plain open() would give, and the umask is never read
    # (reading it means setting it, process-wide, under writer threads).
    tmp_path = _unique(final, suffix or final.suffix or ".tmp", _new_file)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        # A bare "[Errno 28] No space left on device" names no file; say which one.
        message = f"cannot write {final}: {e.strerror or e}"
        raise (OSError(e.errno, message) if e.errno else OSError(message)) from e
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask, read without setting it: os.umask can only read by setting,
    process-wide, which races writer threads creating files meanwhile. Linux shows it in
    /proc/self/status; elsewhere a probe file created 0666 shows it in its mode."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    probe = _unique(Path(tempfile.gettempdir()) / "umask-probe", "", _new_file)
    try:
        return 0o777 & ~probe.stat().st_mode
    finally:
        probe.unlink()


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _new_dir(path: Path) -> None:
    os.mkdir(path, 0o777)


def _unique(final: Path, suffix: str, create) -> Path:
    """A new hidden sibling `.{name}.{random}{suffix}`, made by `create` (which must fail
    with FileExistsError when the name is taken, as O_EXCL and mkdir do)."""
    for _ in range(100):
        candidate = final.parent / f".{final.name}.{secrets.token_hex(6)}{suffix}"
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot create a temporary name beside {final}")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden sibling folder; it replaces `path` only once the body succeeds.

    A killed job leaves a dot-folder nobody lists instead of a half-written model. An
    existing `path` is moved aside first because os.replace cannot overwrite a non-empty
    folder.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _unique(final, "", _new_dir)  # mode 0777 under the umask, as mkdir gives
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
    """Strict JSON: NaN or Infinity (which json.dumps writes as bare words no JSON
    parser accepts) is refused naming the file and the key; the writers put None
    (null) where there is no value. Sorted keys and a fixed indent: the same content
    gives the same bytes."""
    try:
        text = json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as e:
        where = non_finite(obj)
        raise ValueError(
            f"cannot write {path}: {where or 'a value'} is not finite ({e}); JSON has no NaN or Infinity"
        ) from e
    write_text(path, text + "\n", durable)


def non_finite(obj: Any, where: str = "") -> str | None:
    """The key path (`languages.en_us.wer`) of the first NaN/Inf float in `obj`, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where or "the value")
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = non_finite(value, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


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
