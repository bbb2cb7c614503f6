"""Runs under a Python with MXNet 1.9.1 (never imported by dcn_det or the test process):
``python mxnet_psroi_pool.py IN.npz OUT.npz``. IN holds data, rois, grad_out and the
parameters; OUT gets the output of contrib.PSROIPooling (the position-sensitive RoI
pooling of the original, non-deformable R-FCN) and the gradient of data."""
import sys

import mxnet as mx
import numpy as np


def main(src: str, dst: str) -> None:
    a = dict(np.load(src))
    data = mx.nd.array(a["data"], dtype=a["data"].dtype)
    rois = mx.nd.array(a["rois"], dtype=a["rois"].dtype)
    data.attach_grad()
    with mx.autograd.record():
        out = mx.nd.contrib.PSROIPooling(
            data=data, rois=rois, spatial_scale=float(a["spatial_scale"]), output_dim=int(a["output_dim"]),
            pooled_size=int(a["pooled_size"]), group_size=int(a["group_size"]))
    out.backward(mx.nd.array(a["grad_out"], dtype=a["grad_out"].dtype))
    np.savez(dst, out=out.asnumpy(), grad_data=data.grad.asnumpy())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
