"""Test double of qbruntime (PyPI: mobilint-qb-runtime), for the workflow's tests only.

Only what parsing an .mxq without an NPU card offers: `Model(path)` and its shape and
device queries, read from the files the qbcompiler test double writes. Like the real
one, it refuses any other file with QbRuntimeError ("Model_FailedToLoadMXQ"). Every
model opened is recorded (JSON lines in $QBRUNTIME_DOUBLE_LOG).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "qbcompiler_double"))
import fake_mxq  # noqa: E402

__version__ = "v1.5.0-test-double"
_DEVICE_NAMES = {
    "aries-rb": ["aries-rb"],
    "regulus-rb": ["regulus-rb", "regulus-rb-usb"],
    "regulus-ra": ["regulus-ra", "regulus-ra-usb"],
    "aries2": ["aries-rb"],
    "regulus2": ["regulus-ra", "regulus-ra-usb"],
    "aries": ["aries-rb"],
}


class QbRuntimeError(Exception):
    pass


class Model:
    def __init__(self, path: str, model_config=None):
        try:
            self._info = fake_mxq.read(path)
        except (OSError, ValueError):
            raise QbRuntimeError("Model_FailedToLoadMXQ occurred.") from None
        self._path = str(path)
        log = os.environ.get("QBRUNTIME_DOUBLE_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"call": "Model", "path": self._path, **self._info}, sort_keys=True) + "\n")

    def get_model_input_shape(self) -> list[tuple[int, ...]]:
        return [tuple(s) for s in self._info["input_shapes"]]

    def get_num_model_variants(self) -> int:
        return 1

    def get_device_names(self) -> list[str]:
        return list(_DEVICE_NAMES.get(self._info["target_device"], []))

    def get_model_path(self) -> str:
        return self._path


def get_available_devices() -> list:
    return []  # no NPU card in a test
