"""The file format of the test double's .mblt and .mxq "binaries", shared by the
qbcompiler double (writes them), the qbruntime double and the runtime recorders (read
them). Its first bytes say it is a fake, so no NPU tool mistakes it for a binary (the
real qbruntime refuses it: "Invalid magic value detected").
"""

from __future__ import annotations

import json

FAKE_HEADER = b"QBCOMPILER-TEST-DOUBLE, NOT AN NPU BINARY\n"


def write(path, info: dict) -> None:
    with open(path, "wb") as f:
        f.write(FAKE_HEADER + json.dumps(info, sort_keys=True).encode())


def read(path) -> dict:
    """What the double wrote, or ValueError naming the file."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(FAKE_HEADER):
        raise ValueError(f"{path}: not a file written by the qbcompiler test double")
    return json.loads(data[len(FAKE_HEADER) :])
