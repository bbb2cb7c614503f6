"""dcn_det's psroi_pool against MXNet 1.9.1's contrib.PSROIPooling (the position-sensitive
RoI pooling of the original, non-deformable R-FCN), run in MXNet (a subprocess under the
MXNet venv). Forward and the gradient of the input, on the CPU kernel and on the device
(CUDA) algorithm run on the host, float32 (and float64); random RoIs inside, across the
border of and outside the map, degenerate ones, and RoIs whose bin edges fall on integers
in exact arithmetic (where computing the bounds in another precision would move a bin edge
by a pixel). Batch indices stay in range: MXNet reads out of bounds for the others."""
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from dcn_det.ops import psroi_pool
from dcn_det.ops._device_path import host_device_path


# (N, H, W, output_dim, group_size, pooled_size, spatial_scale)
CASES = [
    (1, 7, 9, 3, 1, 1, 1.0),
    (2, 10, 12, 2, 3, 3, 0.5),
    (2, 14, 11, 3, 7, 7, 0.0625),   # R-FCN: k = 7, stride 16
    (1, 12, 12, 2, 2, 5, 0.25),     # group_size < pooled_size
    (2, 9, 13, 4, 1, 7, 0.0625),    # group 1: average RoI pooling, 7x7
    (1, 8, 8, 2, 4, 2, 0.3),        # group_size > pooled_size, inexact scale
    (1, 16, 20, 1, 6, 6, 0.125),
    # inexact scales with integer corners: many bin edges then differ between float32 and
    # float64 arithmetic (about a third of the RoIs at 0.3), so these pin the float32 bounds
    (1, 30, 30, 2, 3, 3, 0.3),
    (2, 24, 26, 2, 5, 5, 0.7),
    (1, 28, 30, 2, 7, 7, 1.0 / 3.0),
]


def _rois(gen, n, h, w, scale, count=24):
    iw, ih = w / scale, h / scale
    u = lambda lo, hi, k: lo + (hi - lo) * torch.rand(k, generator=gen, dtype=torch.float64)  # noqa: E731
    x1, y1 = u(-0.4 * iw, 1.1 * iw, count), u(-0.4 * ih, 1.1 * ih, count)
    x2, y2 = x1 + u(-0.2 * iw, 0.9 * iw, count), y1 + u(-0.2 * ih, 0.9 * ih, count)  # some degenerate (x2 < x1)
    rois = torch.stack([torch.randint(0, n, (count,), generator=gen).double(), x1, y1, x2, y2], dim=1)
    # Feature-map-integer boxes: [16a, 16(a+k) - 1] at scale 1/16 is exactly k pixels wide, so
    # edges p * k / pooled + a are integers in exact arithmetic for some p.
    step = 1.0 / scale
    a = torch.randint(-2, max(2, w - 2), (8,), generator=gen).double()
    b = torch.randint(-2, max(2, h - 2), (8,), generator=gen).double()
    k = torch.randint(1, max(2, min(h, w)), (8,), generator=gen).double()
    exact = torch.stack([torch.randint(0, n, (8,), generator=gen).double(), a * step, b * step,
                         (a + k) * step - 1, (b + k + 1) * step - 1], dim=1)
    # integer corners (the usual proposals), sizes up to half the image
    lo = torch.randint(-5, int(max(iw, ih)), (12, 2), generator=gen).double()
    size = torch.randint(0, int(max(iw, ih) / 2) + 1, (12, 2), generator=gen).double()
    integer = torch.cat([torch.randint(0, n, (12, 1), generator=gen).double(), lo, lo + size], dim=1)
    halves = torch.tensor([[0, 0.5, 1.5, 2.5 * step, 3.5 * step], [n - 1, -0.5, -1.5, 1.5, 0.5]], dtype=torch.float64)
    return torch.cat([rois, exact, integer, halves])


PARAMS = [pytest.param(c, torch.float32, id="f32-" + "-".join(map(str, c))) for c in CASES]
PARAMS += [pytest.param(CASES[2], torch.float64, id="f64-" + "-".join(map(str, CASES[2])))]


@pytest.mark.parametrize("path", ["cpu", "device_path"])
@pytest.mark.parametrize("case, dtype", PARAMS)
def test_psroi_pool_matches_mxnet_psroipooling(run_mxnet, case, dtype, path):
    n, h, w, od, gs, ps, scale = case
    gen = torch.Generator().manual_seed(abs(hash(case)) % 2**31)
    data = torch.randn(n, od * gs * gs, h, w, generator=gen, dtype=torch.float64).to(dtype)
    rois = _rois(gen, n, h, w, scale).to(dtype)
    grad_out = torch.randn(rois.shape[0], od, ps, ps, generator=gen, dtype=torch.float64).to(dtype)
    mx = run_mxnet("mxnet_psroi_pool.py", **dict(
        data=data.numpy(), rois=rois.numpy(), grad_out=grad_out.numpy(), spatial_scale=np.array(scale, np.float32),
        output_dim=np.array(od), group_size=np.array(gs), pooled_size=np.array(ps)))

    with host_device_path() if path == "device_path" else nullcontext():
        x = data.clone().requires_grad_(True)
        out = psroi_pool(x, rois, scale, od, gs, ps)
        (grad,) = torch.autograd.grad(out, x, grad_out)
    want_out, want_grad = torch.from_numpy(mx["out"]), torch.from_numpy(mx["grad_data"])
    assert want_out.abs().sum() > 0 and (want_out == 0).any()  # the case has empty bins too
    # The same bins and the same float32 operations in the same order as MXNet's CPU kernel:
    # the forward is the same sum / area; the gradient is the same additions, in MXNet's order
    # on the CPU kernel, in atomic order on the device path (float32 rounding of sums of a few
    # O(1) terms). A bin edge off by one pixel would change values by O(1), far above 1e-5.
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.detach(), want_out, **tol, msg=lambda m: f"output: {m}")
    torch.testing.assert_close(grad, want_grad, **tol, msg=lambda m: f"grad_data: {m}")
    # identical arithmetic: bit for bit on the CPU kernel in practice (reported, not required)
    print(f"{path}: max |diff| output {(out.detach() - want_out).abs().max().item():.3g}, "
          f"grad {(grad - want_grad).abs().max().item():.3g}")
