"""Read a CTranslate2 `model.bin` with numpy alone (binary format version 6).

The layout, as CTranslate2's ModelSpec._serialize writes it (little-endian):

    u32 version, string spec name, u32 spec revision, u32 variable count,
    per variable: string name, u8 rank, u32 dims[rank], u8 dtype id, u32 byte count, bytes
    u32 alias count, per alias: string alias, string target

where a string is a u16 length (including a trailing NUL), the UTF-8 bytes and the NUL,
and dtype ids follow CTranslate2's DataType enum. Reading it directly keeps the test
tooling free of the ctranslate2 runtime, which only the cross-check below needs.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

BINARY_VERSION = 6
# DataType enum order of include/ctranslate2/types.h; bfloat16 has no numpy dtype and is
# widened by hand.
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


@dataclass(frozen=True)
class Model:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]  # alias -> the variable it shares storage with

    def get(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value

    def string(self) -> str:
        size = self.unpack("H")
        raw = self.data[self.pos : self.pos + size]
        if size == 0 or raw[-1:] != b"\0":
            raise ValueError(f"model.bin: malformed string at byte {self.pos}")
        self.pos += size
        return raw[:-1].decode("utf-8")

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError("model.bin: truncated")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


def _array(raw: bytes, dtype_id: int, shape: list[int]) -> np.ndarray:
    name = DTYPES[dtype_id]
    if name == "bfloat16":
        wide = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return wide.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(name).newbyteorder("<")).reshape(shape).copy()


def read(path: str | os.PathLike) -> Model:
    with open(path, "rb") as f:
        cur = _Cursor(f.read())
    version = cur.unpack("I")
    if version != BINARY_VERSION:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, this reader knows {BINARY_VERSION}")
    spec, revision = cur.string(), cur.unpack("I")
    variables = {}
    for _ in range(cur.unpack("I")):
        name = cur.string()
        shape = [cur.unpack("I") for _ in range(cur.unpack("B"))]
        dtype_id, size = cur.unpack("B"), cur.unpack("I")
        variables[name] = _array(cur.take(size), dtype_id, shape)
    aliases = {}
    for _ in range(cur.unpack("I")):
        alias = cur.string()
        aliases[alias] = cur.string()
    if cur.pos != len(cur.data):
        raise ValueError(f"{path}: {len(cur.data) - cur.pos} bytes after the last alias")
    return Model(spec, revision, variables, aliases)
