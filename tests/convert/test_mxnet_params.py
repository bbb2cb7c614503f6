"""dcn_det.convert.load_mxnet_params on files laid out by hand from the format description
(MXNet itself writes them in tests/verify_mxnet/test_mxnet_params_vs_mxnet.py)."""
import struct

import numpy as np
import pytest

from dcn_det.convert import load_mxnet_params

from .ndarray_file import ndarray_file as _file

ARRAYS = {
    "arg:conv1_weight": np.random.default_rng(0).standard_normal((4, 3, 7, 7)).astype(np.float32),
    "aux:bn_conv1_moving_var": np.random.default_rng(1).random(4),
    "arg:h": np.arange(5, dtype=np.float16),
    "arg:i": np.array([[1, -2], [3, 4]], dtype=np.int64),
}


@pytest.mark.parametrize("magic", [0xF993FAC8, 0xF993FAC9, 0xF993FACA], ids=["v1", "v2", "v3"])
def test_reads_every_array_with_its_name_shape_and_dtype(tmp_path, magic):
    path = tmp_path / "model-0000.params"
    path.write_bytes(_file(ARRAYS, magic=magic))
    got = load_mxnet_params(str(path))
    assert list(got) == list(ARRAYS)
    for k, a in ARRAYS.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape and np.array_equal(got[k], a), k


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:-3], "truncated"),
        (lambda b: b[:40], "truncated"),
        (lambda b: struct.pack("<Q", 0x113) + b[8:], "not an MXNet NDArray file"),
        (lambda b: b + b"x", "unexpected bytes"),
    ],
    ids=["cut-name", "cut-array", "bad-magic", "trailing"],
)
def test_damaged_files_raise_value_error_naming_the_file(tmp_path, mutate, message):
    path = tmp_path / "bad.params"
    path.write_bytes(mutate(_file(ARRAYS)))
    with pytest.raises(ValueError, match=f"bad.params: .*{message}"):
        load_mxnet_params(str(path))


def test_sparse_arrays_are_refused(tmp_path):
    path = tmp_path / "sparse.params"
    path.write_bytes(_file({"arg:w": np.ones(3, np.float32)}, storage=1))
    with pytest.raises(ValueError, match="sparse"):
        load_mxnet_params(str(path))
