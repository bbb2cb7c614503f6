"""dcn_det.convert.load_mxnet_params reads what MXNet 1.9.1's mx.nd.save writes."""
import subprocess

import numpy as np

from dcn_det.convert import load_mxnet_params

WRITE = """
import sys, numpy as np, mxnet as mx
rng = np.random.default_rng(3)
mx.nd.save(sys.argv[1], {
    "arg:res5a_branch2b_offset_weight": mx.nd.array(rng.standard_normal((72, 512, 3, 3)).astype("float32")),
    "aux:bn5a_branch2b_moving_mean": mx.nd.array(rng.random(512), dtype="float64"),
    "arg:half": mx.nd.array(np.arange(6).reshape(2, 3), dtype="float16"),
    "arg:idx": mx.nd.array(np.array([7, -1]), dtype="int64"),
})
np.savez(sys.argv[2], **{k: v.asnumpy() for k, v in mx.nd.load(sys.argv[1]).items()})
"""


def test_reads_a_file_written_by_mxnet(mxnet_python, tmp_path):
    params, expected = tmp_path / "model-0008.params", tmp_path / "expected.npz"
    result = subprocess.run([mxnet_python, "-c", WRITE, str(params), str(expected)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    want = dict(np.load(expected))
    got = load_mxnet_params(str(params))
    assert sorted(got) == sorted(want)
    for k, a in want.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape and np.array_equal(got[k], a), k
