"""dcn_det's deform_conv2d(border="dcnv1") against MXNet 1.9.1's contrib.DeformableConvolution
(the operator of the authors' DCNv1 models), run in MXNet (a subprocess under the MXNet
venv). Forward and the gradients of every input, float32, offsets large enough that many
samples fall near or beyond the map's border. (MXNet's ModulatedDeformableConvolution, the
DCNv2 rule, has no CPU implementation in 1.9.1: "only implemented in GPU".)"""

import numpy as np
import pytest
import torch

from dcn_det.ops import deform_conv2d


# (n, c, h, w, out, k, stride, pad, dilation, groups, offset_groups, offset scale)
CASES = [
    (2, 4, 7, 9, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, 2.0),
    (1, 8, 6, 5, 4, (3, 3), (2, 1), (1, 2), (1, 2), 2, 2, 3.0),
    (2, 6, 9, 8, 6, (3, 3), (1, 1), (2, 2), (2, 2), 1, 3, 4.0),
    (1, 4, 5, 6, 4, (1, 1), (1, 1), (0, 0), (1, 1), 1, 2, 3.0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}x{c[3]}k{c[5][0]}s{c[6]}p{c[7]}d{c[8]}g{c[9]}og{c[10]}")
def test_dcnv1_border_matches_mxnet_deformable_convolution(run_mxnet, case):
    n, c, h, w, co, (kh, kw), stride, pad, dil, groups, og, scale = case
    g = torch.Generator().manual_seed(hash(case) % 2**31)
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    t = {
        "data": torch.randn(n, c, h, w, generator=g),
        "offset": torch.randn(n, 2 * og * kh * kw, ho, wo, generator=g) * scale,
        "weight": torch.randn(co, c // groups, kh, kw, generator=g) / (c // groups * kh * kw) ** 0.5,
        "bias": torch.randn(co, generator=g),
        "grad_out": torch.randn(n, co, ho, wo, generator=g),
    }
    arrays = {k: v.numpy() for k, v in t.items()}
    arrays.update(stride=np.array(stride), pad=np.array(pad), dilate=np.array(dil), groups=np.array(groups),
                  offset_groups=np.array(og))
    mx = run_mxnet("mxnet_deform_conv.py", **arrays)

    names = ["data", "offset", "weight", "bias"]
    leaves = {k: t[k].clone().requires_grad_() for k in names}
    out = deform_conv2d(leaves["data"], leaves["offset"], leaves["weight"], leaves["bias"], stride=stride,
                        padding=pad, dilation=dil, border="dcnv1")
    grads = torch.autograd.grad(out, [leaves[k] for k in names], t["grad_out"])
    # float32 on both sides, sums of up to c*kh*kw products of O(1) terms: 1e-4 of the scale.
    def close(got, want, what):
        want = torch.from_numpy(want)
        torch.testing.assert_close(got.detach(), want, rtol=1e-4, atol=1e-4 * max(1.0, want.abs().max().item()),
                                   msg=lambda m: f"{what}: {m}")
    close(out, mx["out"], "output")
    for k, gr in zip(names, grads):
        close(gr, mx[f"grad_{k}"], f"grad_{k}")
    # The case exercises the rule: the DCNv2 rule gives another output here.
    other = deform_conv2d(t["data"], t["offset"], t["weight"], t["bias"], stride=stride, padding=pad,
                          dilation=dil, border="dcnv2")
    assert (other - torch.from_numpy(mx["out"])).abs().max() > 1e-2
