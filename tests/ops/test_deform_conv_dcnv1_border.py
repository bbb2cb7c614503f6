"""``deform_conv2d(..., border="dcnv1")``: the sampling rule of MXNet's DeformableConvolution
(the original DCNv1 networks; docs/semantics.md section 1).

Ground truth: ``deform_conv2d_reference.bilinear_sample_dcnv1`` (plain PyTorch from the rule)
and, independently of both, values written out by hand for single points. On the CPU every
loop variant and both conv paths; the device path runs the GPU's element math on the host.
The comparison with MXNet itself is in tests/verify_mxnet/.
"""
import pytest
import torch

from dcn_det.ops import deform_conv2d

from .deform_conv2d_reference import deform_conv2d_ref
from .devices import DEVICES
from .test_deform_conv import (
    GRAD_NAMES,
    INTEGER_CASES,
    REF_CASES,
    WIDE_CASES,
    Case,
    _cpu_variants,
    _sample_points,
    assert_grads_close,
    conv_kwargs,
    make_inputs,
    run_with_grads,
)

OP = torch.ops.dcn_det.deform_conv2d.default
DCNV1 = dict(border="dcnv1")
CASES = REF_CASES[::3] + WIDE_CASES[:2]


def _cpu(tensors):
    return [None if t is None else t.cpu() for t in tensors]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference_forward_and_gradients(case, device):
    seed = 700 + CASES.index(case)
    tensors = make_inputs(case, seed, device=device)
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, _cpu(tensors), seed, **conv_kwargs(case), **DCNV1)
    # The rule matters in these cases: dcnv2 gives another answer.
    dcnv2_out, _ = run_with_grads(deform_conv2d_ref, _cpu(tensors), seed, **conv_kwargs(case))
    assert (dcnv2_out - ref_out).abs().max() > 1e-3
    for where, forced in _cpu_variants(device):
        with forced():
            out, grads = run_with_grads(deform_conv2d, tensors, seed, **conv_kwargs(case), **DCNV1)
        tol = dict(rtol=1e-9, atol=1e-9, msg=lambda m: f"{where}: {m}")
        torch.testing.assert_close(out.cpu(), ref_out, **tol)
        assert_grads_close(_cpu(grads), ref_grads, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("offset_mode", ["zero", "integer"])
@pytest.mark.parametrize("case", INTEGER_CASES, ids=str)
def test_integer_points_match_reference(case, offset_mode, device):
    """Every sample point on an integer: on the jumps y = 0 (value) and y = H (zero), the
    snapped last row, and the interior kinks (one-sided slopes, as the reference's)."""
    seed = 800 + INTEGER_CASES.index(case)
    tensors = make_inputs(case, seed, offset_mode=offset_mode)
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, tensors, seed, **conv_kwargs(case), **DCNV1)
    on_device = [None if t is None else t.to(device) for t in tensors]
    for where, forced in _cpu_variants(device):
        with forced():
            out, grads = run_with_grads(deform_conv2d, on_device, seed, **conv_kwargs(case), **DCNV1)
        torch.testing.assert_close(out.cpu(), ref_out, rtol=1e-10, atol=1e-10, msg=lambda m: f"{where}: {m}")
        assert_grads_close(_cpu(grads), ref_grads, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_values_written_out_by_hand(device):
    """The rule written out per point (plain Python on a 4x5 map): 0 outside
    [0, H) x [0, W) (also in the band where DCNv2 interpolates); in the last row the value
    is row H-1 interpolated along x only; in the last column likewise; inside, bilinear."""
    h, w = 4, 5
    ys = [-0.5, 0.0, 1.25, 3.0, 3.6, 4.0, 4.3]
    xs = [-0.2, 0.0, 2.5, 4.0, 4.75, 5.0]
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, h, w, generator=g, dtype=torch.float64).to(device)
    weight = torch.tensor([[[[1.0]], [[0.0]]]], dtype=torch.float64, device=device)  # = channel 0's sample
    v = x[0, 0].cpu()

    def expected(y, xx):
        if not (0 <= y < h and 0 <= xx < w):
            return 0.0
        y0, x0 = int(y // 1), int(xx // 1)
        if y0 >= h - 1:
            y0, y = h - 1, float(h - 1)
        if x0 >= w - 1:
            x0, xx = w - 1, float(w - 1)
        ly, lx = y - y0, xx - x0
        y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
        return ((1 - ly) * (1 - lx) * v[y0, x0] + (1 - ly) * lx * v[y0, x1]
                + ly * (1 - lx) * v[y1, x0] + ly * lx * v[y1, x1]).item()

    # Output pixel (i, j) with padding p has base (i - p, j - p); p = 3 gives a (h+6) x (w+6)
    # output grid, of which the first n_y x n_x pixels carry the chosen points.
    p = 3
    ho, wo = h + 2 * p, w + 2 * p
    off = torch.zeros(1, 2, ho, wo, dtype=torch.float64)
    for i, yy in enumerate(ys):
        for j, xx in enumerate(xs):
            off[0, 0, i, j] = yy - (i - p)
            off[0, 1, i, j] = xx - (j - p)
    out = deform_conv2d(x, off.to(device), weight, padding=p, border="dcnv1").cpu()
    for i, yy in enumerate(ys):
        for j, xx in enumerate(xs):
            assert out[0, 0, i, j].item() == pytest.approx(expected(yy, xx), abs=1e-12), (yy, xx)
    # Spot checks of the rule itself (not of the expected() above).
    assert out[0, 0, ys.index(-0.5), xs.index(2.5)].item() == 0.0  # DCNv2 would interpolate row 0 here
    last_row = out[0, 0, ys.index(3.6), xs.index(2.5)].item()
    assert last_row == pytest.approx(0.5 * (v[3, 2] + v[3, 3]).item(), abs=1e-12)
    corner = out[0, 0, ys.index(3.6), xs.index(4.75)].item()
    assert corner == pytest.approx(v[3, 4].item(), abs=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_last_row_has_no_slope_along_y(device):
    """In the last row the value does not depend on y, so d/dy = 0; d/dx stays."""
    case = Case(1, 2, 4, 5, 2, (1, 1), 1, 0, 1, 1, 1, mask=False, bias=False)
    x, offset, weight, _, _ = make_inputs(case, 5, device=device)
    offset = torch.zeros_like(offset)
    offset[0, 0] = 0.4 - torch.arange(4, dtype=torch.float64, device=device).view(-1, 1) + 3  # y = 3.4
    offset[0, 1] = 0.3  # x = j + 0.3
    out, grads = run_with_grads(deform_conv2d, (x, offset, weight, None, None), 1, border="dcnv1")
    goff = grads[GRAD_NAMES.index("offset")].cpu()
    assert torch.all(goff[0, 0] == 0)
    assert goff[0, 1, :, :4].abs().min() > 0  # columns 0-3 interpolate along x
    assert torch.all(goff[0, 1, :, 4] == 0)  # x = 4.3 is in the last column


@pytest.mark.parametrize("device", DEVICES)
def test_equals_dcnv2_when_every_sample_is_inside(device):
    """The rules differ only near the border: points in [0, H-1) x [0, W-1) agree bitwise."""
    case = Case(2, 4, 9, 9, 3, (3, 3), 1, 1, 1, 1, 2, mask=True, bias=True)
    x, offset, weight, bias, mask = make_inputs(case, 9, device=device, offset_mode="fractional")
    y, xx = _sample_points(case, offset.cpu())
    offset = offset.clone()
    off = offset.view(case.n, case.og, 9, 2, 9, 9)
    # Move every point inside by reflecting the base grid: clamp the sample points.
    off[:, :, :, 0] += (y.clamp(0.05, case.h - 1.05) - y).to(device)
    off[:, :, :, 1] += (xx.clamp(0.05, case.w - 1.05) - xx).to(device)
    a = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask, border="dcnv1")
    b = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask, border="dcnv2")
    assert torch.equal(a, b)


GRADCHECK_CASES = [
    Case(1, 2, 4, 4, 2, (2, 2), 1, 0, 1, 1, 1, mask=True, bias=True),
    Case(2, 4, 5, 4, 2, (3, 2), (2, 1), 1, (1, 2), 2, 2, mask=False, bias=True),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=str)
def test_gradcheck(case, device):
    tensors = make_inputs(case, 900 + GRADCHECK_CASES.index(case), device=device, offset_mode="fractional")
    y, x = _sample_points(case, tensors[1].cpu())
    # Fractional points: at least 0.1 from every jump and kink; some in the last row/column.
    assert ((y > case.h - 1) & (y < case.h)).any() and ((x > case.w - 1) & (x < case.w)).any()
    args = [None if t is None else t.requires_grad_() for t in tensors]
    kw = conv_kwargs(case)

    def fn(x, offset, weight, bias, mask):
        return deform_conv2d(x, offset, weight, bias, mask=mask, border="dcnv1", **kw)

    assert torch.autograd.gradcheck(fn, tuple(args), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("border", ["DCNv1", "v1", "", None, 1])
def test_unknown_border_raises_value_error(border):
    case = Case(1, 2, 4, 4, 2, (3, 3), 1, 1)
    x, offset, weight, bias, mask = make_inputs(case, 0)
    with pytest.raises(ValueError, match="border must be one of"):
        deform_conv2d(x, offset, weight, bias, padding=1, mask=mask, border=border)


def test_raw_op_rejects_an_unknown_border_code():
    case = Case(1, 2, 4, 4, 2, (3, 3), 1, 1)
    x, offset, weight, bias, mask = make_inputs(case, 0)
    with pytest.raises(ValueError, match="border must be 0"):
        OP(x, offset, weight, bias, mask, 1, 1, 1, 1, 1, 1, 1, 1, 2)


def test_opcheck():
    case = Case(1, 2, 4, 4, 2, (3, 3), 1, 1)
    x, offset, weight, bias, mask = make_inputs(case, 0, dtype=torch.float32, offset_mode="fractional")
    args = (x.requires_grad_(), offset.requires_grad_(), weight, bias, mask, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    torch.library.opcheck(OP, args)
