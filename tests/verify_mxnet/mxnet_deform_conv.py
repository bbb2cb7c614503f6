"""Runs under a Python with MXNet 1.9.1 (never imported by dcn_det or the test process):
``python mxnet_deform_conv.py IN.npz OUT.npz``. IN holds data, offset, weight, bias
and grad_out plus the geometry; OUT gets the output of contrib.DeformableConvolution (the
DCNv1 operator the authors' DCNv1 models use) and its gradients."""
import sys

import mxnet as mx
import numpy as np


def main(src: str, dst: str) -> None:
    a = dict(np.load(src))
    kh, kw = a["weight"].shape[2:]
    geometry = dict(
        kernel=(int(kh), int(kw)), stride=tuple(int(v) for v in a["stride"]), pad=tuple(int(v) for v in a["pad"]),
        dilate=tuple(int(v) for v in a["dilate"]), num_filter=int(a["weight"].shape[0]),
        num_group=int(a["groups"]), num_deformable_group=int(a["offset_groups"]), no_bias=False,
    )
    names = ["data", "offset", "weight", "bias"]
    arrays = {n: mx.nd.array(a[n], dtype=a[n].dtype) for n in names}
    for v in arrays.values():
        v.attach_grad()
    with mx.autograd.record():
        out = mx.nd.contrib.DeformableConvolution(
            data=arrays["data"], offset=arrays["offset"], weight=arrays["weight"], bias=arrays["bias"], **geometry)
    out.backward(mx.nd.array(a["grad_out"], dtype=a["grad_out"].dtype))
    result = {"out": out.asnumpy()}
    result.update({f"grad_{n}": arrays[n].grad.asnumpy() for n in names})
    np.savez(dst, **result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
