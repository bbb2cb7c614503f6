"""Writes MXNet NDArray files (``mx.nd.save`` format, see dcn_det/convert/mxnet_params.py) by
hand, for tests that need a .params file without MXNet."""
import struct

import numpy as np

FLAGS = {np.float32: 0, np.float64: 1, np.float16: 2, np.uint8: 3, np.int32: 4, np.int8: 5, np.int64: 6}


def _array(a: np.ndarray, magic=0xF993FAC9, storage=0) -> bytes:
    out = struct.pack("<I", magic)
    if magic != 0xF993FAC8:
        out += struct.pack("<i", storage)
    out += struct.pack("<i", a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape)
    return out + struct.pack("<iii", 1, 0, FLAGS[a.dtype.type]) + a.astype(a.dtype.newbyteorder("<")).tobytes()


def ndarray_file(named, **array_kw) -> bytes:
    """The bytes of an MXNet NDArray file holding ``named`` (name -> array), as mx.nd.save writes it."""
    out = struct.pack("<QQQ", 0x112, 0, len(named)) + b"".join(_array(a, **array_kw) for a in named.values())
    out += struct.pack("<Q", len(named))
    for k in named:
        out += struct.pack("<Q", len(k.encode())) + k.encode()
    return out
