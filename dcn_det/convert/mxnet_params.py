"""Reads MXNet's NDArray file format (``mx.nd.save``: the ``.params`` files of trained MXNet
models) without MXNet, which does not install on current Python.

The format (MXNet 1.x, little-endian), as written by ``mx.nd.save`` of a dict:

    uint64 0x112 (list magic), uint64 0 (reserved)
    uint64 count, then ``count`` arrays, each:
        uint32 array magic: 0xF993FAC9 (V2) / 0xF993FACA (V3) are followed by int32
            storage type (0 = dense; sparse arrays are refused); 0xF993FAC8 (V1) is not
        int32 ndim, int64 dims[ndim]          (ndim 0: an empty array, nothing follows)
        int32 device type, int32 device id     (ignored)
        int32 dtype flag (0 float32, 1 float64, 2 float16, 3 uint8, 4 int32, 5 int8, 6 int64)
        the elements, C order
    uint64 count, then ``count`` names: uint64 length, bytes (utf-8)

Names in a model's file carry the prefixes ``arg:`` (parameters) and ``aux:`` (e.g. batch
norm statistics), which are kept.
"""
import struct
from typing import BinaryIO, Dict

import numpy as np

LIST_MAGIC = 0x112
ARRAY_MAGIC_V1, ARRAY_MAGIC_V2, ARRAY_MAGIC_V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64}


class _Reader:
    def __init__(self, f: BinaryIO, path: str):
        self.f, self.path = f, path

    def read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError(f"{self.path}: truncated MXNet NDArray file (wanted {n} bytes at offset "
                             f"{self.f.tell() - len(data)}, got {len(data)})")
        return data

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt)))


def _read_array(r: _Reader, index: int) -> np.ndarray:
    (magic,) = r.unpack("I")
    if magic in (ARRAY_MAGIC_V2, ARRAY_MAGIC_V3):
        (storage,) = r.unpack("i")
        if storage != 0:
            raise ValueError(f"{r.path}: array {index} is sparse (storage type {storage}); only dense arrays are supported")
    elif magic != ARRAY_MAGIC_V1:
        raise ValueError(f"{r.path}: array {index} has magic {magic:#x}, not an MXNet 1.x NDArray "
                         f"({ARRAY_MAGIC_V1:#x}, {ARRAY_MAGIC_V2:#x} or {ARRAY_MAGIC_V3:#x}); files of MXNet "
                         "before 0.9 are not supported")
    (ndim,) = r.unpack("i")
    if ndim <= 0:
        return np.zeros((0,), np.float32)
    shape = r.unpack(f"{ndim}q")
    r.unpack("ii")  # device type and id
    (flag,) = r.unpack("i")
    if flag not in DTYPES:
        raise ValueError(f"{r.path}: array {index} has unknown dtype flag {flag}")
    dtype = np.dtype(DTYPES[flag]).newbyteorder("<")
    count = int(np.prod(shape))
    return np.frombuffer(r.read(count * dtype.itemsize), dtype=dtype).reshape(shape).astype(DTYPES[flag])


def load_mxnet_params(path: str) -> Dict[str, np.ndarray]:
    """``{name: array}`` of the MXNet NDArray file ``path`` (names with their ``arg:`` /
    ``aux:`` prefixes). Raises ValueError, naming the file, on anything but a complete
    MXNet 1.x file of named dense arrays."""
    with open(path, "rb") as f:
        r = _Reader(f, path)
        magic, _reserved = r.unpack("QQ")
        if magic != LIST_MAGIC:
            raise ValueError(f"{path}: not an MXNet NDArray file (magic {magic:#x}, expected {LIST_MAGIC:#x})")
        (count,) = r.unpack("Q")
        arrays = [_read_array(r, i) for i in range(count)]
        (names,) = r.unpack("Q")
        if names != count:
            raise ValueError(f"{path}: {count} arrays but {names} names (an unnamed list is not a model's parameters)")
        keys = [r.read(r.unpack("Q")[0]).decode("utf-8") for _ in range(names)]
        if f.read(1):
            raise ValueError(f"{path}: unexpected bytes after the last name")
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: repeated names")
    return dict(zip(keys, arrays))
