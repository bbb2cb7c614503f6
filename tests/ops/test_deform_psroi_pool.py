"""Tests of ``dcn_det.ops.deform_psroi_pool`` (deformable PS-RoI pooling, docs/semantics.md section 2).

The operator is checked against the float64 reference in ``deform_psroi_pool_reference.py``
(written from the spec and the semantics of MXNet's DeformablePSROIPooling) and against
values derived on paper. Tests that take a ``device`` run on the CPU kernel, on the device
(CUDA) algorithm executed on the host (``device_path``) and on CUDA when present
(devices.py).
"""
import math
import re
from dataclasses import dataclass

import pytest
import torch

from dcn_det.ops import deform_psroi_pool

from tests.ops.devices import DEVICES
from tests.ops.deform_psroi_pool_reference import (  # noqa: E402
    GRADCHECK_ARGS,
    GRADCHECK_MARGIN,
    HAND_CASES,
    deform_psroi_pool_reference,
    gradcheck_case,
    kink_margin,
    sample_positions,
)

F64 = torch.float64


# ----------------------------------- random cases ---------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    N: int
    H: int
    W: int
    output_dim: int
    group_size: int
    pooled_size: int
    part_size: int  # 0: pooled_size
    sample_per_part: int
    trans_std: float
    no_trans: bool
    num_classes: int  # 0: class-agnostic offset (2 channels); k: 2k channels
    spatial_scale: float

    def op_args(self):
        return (self.spatial_scale, self.output_dim, self.group_size, self.pooled_size,
                self.part_size, self.sample_per_part, self.trans_std, self.no_trans)


CASES = [
    Case("g1-p1-s1-notrans", 1, 5, 6, 1, 1, 1, 0, 1, 0.0, True, 0, 1.0),
    Case("g1-p2-s2-agnostic", 2, 7, 6, 2, 1, 2, 0, 2, 0.1, False, 0, 0.5),
    Case("g1-p3-part2-s3", 2, 8, 9, 3, 1, 3, 2, 3, 0.1, False, 0, 0.25),
    Case("g1-p7-s4-dpool", 2, 9, 8, 4, 1, 7, 0, 4, 0.1, False, 0, 0.0625),
    Case("g2-p3-s2-classes2", 2, 7, 7, 2, 2, 3, 0, 2, 0.1, False, 2, 0.5),
    Case("g3-p2-s3-group-gt-pooled", 1, 6, 7, 2, 3, 2, 0, 3, 0.1, False, 0, 1.0),
    Case("g3-p3-s2-classes2", 2, 7, 8, 4, 3, 3, 0, 2, 0.1, False, 2, 0.5),
    Case("g3-p3-part5-s1", 2, 6, 6, 2, 3, 3, 5, 1, 0.1, False, 0, 1.0),
    Case("g4-p4-s2-trans_std0", 2, 8, 8, 2, 4, 4, 0, 2, 0.0, False, 0, 0.5),
    Case("g5-p5-part3-s2-classes2", 2, 9, 9, 2, 5, 5, 3, 2, 0.1, False, 2, 0.5),
    Case("g6-p6-part4-s1-notrans", 2, 8, 7, 2, 6, 6, 4, 1, 0.0, True, 0, 0.5),
    Case("g7-p7-s2-rfcn-agnostic", 2, 10, 10, 2, 7, 7, 0, 2, 0.1, False, 0, 0.0625),
    Case("g7-p7-s4-classes3", 1, 9, 9, 3, 7, 7, 0, 4, 0.1, False, 3, 0.25),
    Case("g1-p5-part2-s3-classes4", 2, 7, 7, 4, 1, 5, 2, 3, 0.1, False, 4, 0.5),
    Case("g2-p2-s2-three-images", 3, 6, 6, 2, 2, 2, 0, 2, 0.1, False, 0, 1.0),
    Case("g2-p2-s2-od6-classes3", 2, 6, 6, 6, 2, 2, 0, 2, 0.1, False, 3, 0.5),
    Case("g1-p3-s4-trans_std0.5", 2, 7, 7, 2, 1, 3, 0, 4, 0.5, False, 0, 0.5),
    Case("g1-p4-part7-s2", 2, 8, 8, 2, 1, 4, 7, 2, 0.1, False, 0, 0.5),
    Case("g3-p6-s1-notrans-scale1", 1, 10, 10, 2, 3, 6, 0, 1, 0.0, True, 0, 1.0),
    Case("g2-p1-s3", 2, 6, 6, 1, 2, 1, 0, 3, 0.1, False, 0, 1.0),
    Case("g4-p7-part3-s3-classes2", 2, 8, 8, 2, 4, 7, 3, 3, 0.1, False, 2, 0.25),
]


def _make_rois(gen, N, H, W, scale):
    """RoIs of every kind, in image coordinates; batch indices cycle through 0..N-1."""
    iw, ih = W / scale, H / scale

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand((), generator=gen, dtype=F64).item()

    rows = []
    # inside the map, fractional coordinates
    x1, y1 = u(0, 0.5 * iw), u(0, 0.5 * ih)
    rows.append([x1, y1, u(x1, iw - 1), u(y1, ih - 1)])
    # partly outside (top-left), partly outside (bottom-right), fully outside
    rows.append([u(-0.5 * iw, 0), u(-0.5 * ih, 0), u(0.2 * iw, 0.8 * iw), u(0.2 * ih, 0.8 * ih)])
    rows.append([u(0.5 * iw, iw), u(0.5 * ih, ih), u(iw, 1.5 * iw), u(ih, 1.5 * ih)])
    rows.append([u(1.2 * iw, 1.5 * iw), u(-ih, -0.6 * ih),
                 u(1.6 * iw, 2 * iw), u(-0.5 * ih, -0.3 * ih)])
    # degenerate: x2 < x1 and y2 < y1 (width and height floored at 0.1)
    x1, y1 = u(0.4 * iw, 0.9 * iw), u(0.4 * ih, 0.9 * ih)
    rows.append([x1, y1, x1 - u(1, 0.3 * iw), y1 - u(1, 0.3 * ih)])
    # tiny: at most one pixel wide, zero height
    x1, y1 = u(0, iw - 1), u(0, ih - 1)
    rows.append([x1, y1, x1 + u(0, 0.4), y1])
    # exact .5 halves, positive and negative (C round goes away from zero)
    a, b = math.floor(u(1, 0.5 * iw)) + 0.5, math.floor(u(1, 0.5 * ih)) + 0.5
    rows.append([a, b, a + 2 * math.floor(u(1, 0.4 * iw)) + 1.0, b + 3.0])
    rows.append([-0.5 - math.floor(u(0, 3)), -2.5, 0.5 * iw - 0.5, 0.5 * ih + 0.5])
    rois = torch.tensor(rows, dtype=F64)
    batch = torch.arange(len(rows), dtype=F64) % N
    return torch.cat([batch[:, None], rois], dim=1)


def _make_case(case: Case, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    channels = case.output_dim * case.group_size ** 2
    inp = torch.randn(case.N, channels, case.H, case.W, generator=gen, dtype=F64)
    rois = _make_rois(gen, case.N, case.H, case.W, case.spatial_scale)
    part = case.part_size or case.pooled_size
    nc = max(case.num_classes, 1)
    offset = torch.randn(rois.shape[0], 2 * nc, part, part, generator=gen, dtype=F64)
    return inp, rois, offset


def _check_well_posed(case, rois, offset):
    """Samples within 1e-9 of a skip limit must lie exactly on it (the op and the reference
    then agree if both follow the original's arithmetic); otherwise rounding decides."""
    w, h = sample_positions(rois, offset, case.spatial_scale, case.output_dim, case.pooled_size,
                            case.part_size, case.sample_per_part, case.trans_std, case.no_trans)
    for p, size in ((w.detach(), case.W), (h.detach(), case.H)):
        for limit in (-0.5, size - 0.5):
            d = (p - limit).abs()
            assert not ((d > 0) & (d < 1e-9)).any(), f"{case.name}: sample within 1e-9 of {limit}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward_matches_reference(case, device):
    inp, rois, offset = _make_case(case)
    _check_well_posed(case, rois, offset)
    expected = deform_psroi_pool_reference(inp, rois, offset, *case.op_args())
    out = deform_psroi_pool(inp.to(device), rois.to(device), offset.to(device), *case.op_args())
    assert out.shape == (rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size)
    assert out.dtype == F64 and out.device.type == device
    assert expected.abs().sum() > 0
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backward_matches_reference(case, device):
    inp, rois, offset = _make_case(case)
    _check_well_posed(case, rois, offset)
    gen = torch.Generator().manual_seed(1)
    grad_out = torch.randn(rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size,
                           generator=gen, dtype=F64)

    ref_inp, ref_off = inp.clone().requires_grad_(True), offset.clone().requires_grad_(True)
    deform_psroi_pool_reference(ref_inp, rois, ref_off, *case.op_args()).backward(grad_out)
    ref_off_grad = ref_off.grad if ref_off.grad is not None else torch.zeros_like(offset)

    op_inp = inp.to(device).requires_grad_(True)
    op_off = offset.to(device).requires_grad_(True)
    out = deform_psroi_pool(op_inp, rois.to(device), op_off, *case.op_args())
    out.backward(grad_out.to(device))
    torch.testing.assert_close(op_inp.grad.cpu(), ref_inp.grad, rtol=1e-9, atol=1e-10)
    if case.no_trans:
        # no_trans ignores the offset: no gradient, or an all-zero one
        assert op_off.grad is None or not op_off.grad.any()
    else:
        torch.testing.assert_close(op_off.grad.cpu(), ref_off_grad, rtol=1e-9, atol=1e-10)


# ----------------------------------- hand-computed --------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", HAND_CASES, ids=[c.name for c in HAND_CASES])
def test_hand_computed_value(case, device):
    inp, rois, off = case.tensors(device)
    out = deform_psroi_pool(inp, rois, off, **case.kwargs)
    torch.testing.assert_close(out.cpu(), case.expected_tensor(), rtol=1e-12, atol=1e-12)


GRAD_CASES = [
    c for c in HAND_CASES if c.expected_offset_grad is not None or c.expected_input_grad is not None
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_hand_computed_gradients(case, device):
    # includes the original's convention that a sample on an integer position gives a zero
    # offset gradient ("integer_sample_offset_gradient_is_zero")
    inp, rois, off = case.tensors(device)
    inp.requires_grad_(True)
    off.requires_grad_(True)
    deform_psroi_pool(inp, rois, off, **case.kwargs).sum().backward()
    if case.expected_input_grad is not None:
        torch.testing.assert_close(inp.grad.cpu(), case.expected_input_grad(),
                                   rtol=1e-12, atol=1e-12)
    if case.expected_offset_grad is not None:
        expected = torch.tensor(case.expected_offset_grad, dtype=F64)
        torch.testing.assert_close(off.grad.cpu(), expected, rtol=1e-12, atol=1e-12)


# ------------------------------------ gradcheck -----------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_input_and_offset(device):
    inp, rois, off = gradcheck_case(device)
    assert kink_margin(rois, off, 8, 8, *GRADCHECK_ARGS) > GRADCHECK_MARGIN
    inp.requires_grad_(True)
    off.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda i, o: deform_psroi_pool(i, rois, o, *GRADCHECK_ARGS),
        (inp, off), eps=1e-6, atol=1e-6, nondet_tol=1e-12,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_input_no_trans(device):
    inp, rois, _ = gradcheck_case(device)
    inp.requires_grad_(True)
    args = GRADCHECK_ARGS[:-2] + (0.0, True)
    assert torch.autograd.gradcheck(
        lambda i: deform_psroi_pool(i, rois, None, *args), (inp,), eps=1e-6, atol=1e-6,
        nondet_tol=1e-12,
    )


# ----------------------------------- opcheck / compile ----------------------------------


def _small_args(device, no_trans):
    """Arguments of torch.ops.dcn_det.deform_psroi_pool.default (part_size already resolved)."""
    inp, rois, off = gradcheck_case(device)
    inp.requires_grad_(True)
    spatial_scale, output_dim, group_size, pooled_size, part_size, sample_per_part, trans_std, _ = (
        GRADCHECK_ARGS)
    if no_trans:
        off, trans_std = None, 0.0
    else:
        off.requires_grad_(True)
    return (inp, rois, off, spatial_scale, output_dim, group_size, pooled_size, part_size,
            sample_per_part, trans_std, no_trans)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("no_trans", [False, True], ids=["offset", "no_trans-offset_none"])
def test_opcheck(device, no_trans):
    op = torch.ops.dcn_det.deform_psroi_pool.default
    torch.library.opcheck(op, _small_args(device, no_trans))


def _call_wrapper(inp, rois, off):
    return deform_psroi_pool(inp, rois, off, *GRADCHECK_ARGS)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph_forward_matches_eager(device):
    inp, rois, off = gradcheck_case(device)
    torch._dynamo.reset()
    compiled = torch.compile(_call_wrapper, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(inp, rois, off), _call_wrapper(inp, rois, off),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph_backward_matches_eager(device):
    inp, rois, off = gradcheck_case(device)
    grads = []
    for fn in (_call_wrapper, torch.compile(_call_wrapper, fullgraph=True, backend="aot_eager")):
        torch._dynamo.reset()
        i, o = inp.clone().requires_grad_(True), off.clone().requires_grad_(True)
        fn(i, rois, o).square().sum().backward()
        grads.append((i.grad, o.grad))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-12, atol=1e-12)


# ---------------------------------- special inputs --------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_zero_rois_give_empty_output_and_backward(device):
    inp = torch.randn(2, 2 * 9, 6, 6, dtype=F64, device=device, requires_grad=True)
    rois = torch.zeros(0, 5, dtype=F64, device=device)
    off = torch.zeros(0, 2, 3, 3, dtype=F64, device=device, requires_grad=True)
    out = deform_psroi_pool(inp, rois, off, 0.5, 2, 3, 3, 0, 2, 0.1, False)
    assert out.shape == (0, 2, 3, 3) and out.dtype == F64 and out.device.type == device
    out.sum().backward()
    assert inp.grad is not None and inp.grad.shape == inp.shape and not inp.grad.any()
    assert off.grad is None or off.grad.shape == off.shape


@pytest.mark.parametrize("device", DEVICES)
def test_zero_rois_without_offset(device):
    inp = torch.randn(1, 4, 5, 5, dtype=F64, device=device)
    out = deform_psroi_pool(inp, torch.zeros(0, 5, dtype=F64, device=device), None,
                            1.0, 1, 2, 2, no_trans=True)
    assert out.shape == (0, 1, 2, 2)


# tolerances of the low-precision op against the float32 op on the same (rounded) inputs:
# forward = output rounding (fp16: 2^-11 relative, bf16: 2^-8); gradients relative to
# their largest entry, which leaves room for low-precision accumulation of the input grad.
LOW_PRECISION = [
    pytest.param(torch.float16, 2e-3, 1e-2, id="float16"),
    pytest.param(torch.bfloat16, 1.6e-2, 5e-2, id="bfloat16"),
]


def _low_precision_case(dtype, device):
    case = Case("lp", 2, 9, 9, 2, 3, 3, 0, 2, 0.1, False, 2, 0.5)
    inp, rois, off = _make_case(case, seed=3)
    # round the inputs to the low dtype once; the float32 run sees the same values
    inp, rois, off = (t.to(dtype).to(device) for t in (inp, rois, off))
    return case, inp, rois, off


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, fwd_tol, grad_tol", LOW_PRECISION)
def test_low_precision_forward_close_to_float32(dtype, fwd_tol, grad_tol, device):
    case, inp, rois, off = _low_precision_case(dtype, device)
    out = deform_psroi_pool(inp, rois, off, *case.op_args())
    assert out.dtype == dtype
    ref = deform_psroi_pool(inp.float(), rois.float(), off.float(), *case.op_args())
    torch.testing.assert_close(out.float(), ref, rtol=fwd_tol, atol=fwd_tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, fwd_tol, grad_tol", LOW_PRECISION)
def test_low_precision_backward_close_to_float32(dtype, fwd_tol, grad_tol, device):
    case, inp, rois, off = _low_precision_case(dtype, device)
    gen = torch.Generator().manual_seed(5)
    grad_out = torch.randn(rois.shape[0], 2, 3, 3, generator=gen).to(dtype).to(device)
    results = []
    for dt in (dtype, torch.float32):
        i = inp.detach().to(dt).requires_grad_(True)
        o = off.detach().to(dt).requires_grad_(True)
        deform_psroi_pool(i, rois.to(dt), o, *case.op_args()).backward(grad_out.to(dt))
        assert i.grad.dtype == dt and o.grad.dtype == dt
        results.append((i.grad.float(), o.grad.float()))
    for low, ref in zip(*results):
        assert (low - ref).abs().max() <= grad_tol * ref.abs().max()


# ------------------------------------- semantics ----------------------------------------


def _semantics_case(device):
    case = Case("sem", 2, 8, 8, 2, 3, 3, 2, 2, 0.5, False, 2, 0.5)
    inp, rois, off = _make_case(case, seed=11)
    return case, inp.to(device), rois.to(device), off.to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_no_trans_ignores_offset(device):
    case, inp, rois, off = _semantics_case(device)
    args = case.op_args()[:-1] + (True,)
    with_offset = deform_psroi_pool(inp, rois, off, *args)
    without = deform_psroi_pool(inp, rois, None, *args)
    torch.testing.assert_close(with_offset, without, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_trans_std_zero_equals_no_trans(device):
    case, inp, rois, off = _semantics_case(device)
    args = case.op_args()
    zero_std = deform_psroi_pool(inp, rois, off, *args[:-2], 0.0, False)
    no_trans = deform_psroi_pool(inp, rois, None, *args[:-2], 0.0, True)
    torch.testing.assert_close(zero_std, no_trans, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_trans_std_zero_gives_zero_offset_gradient(device):
    case, inp, rois, off = _semantics_case(device)
    off.requires_grad_(True)
    deform_psroi_pool(inp, rois, off, *case.op_args()[:-2], 0.0, False).sum().backward()
    assert off.grad is not None and not off.grad.any()


@pytest.mark.parametrize("device", DEVICES)
def test_part_size_zero_means_pooled_size(device):
    case, inp, rois, _ = _semantics_case(device)
    off = torch.randn(rois.shape[0], 4, 3, 3, dtype=F64, device=device)
    a = case.op_args()
    implicit = deform_psroi_pool(inp, rois, off, a[0], a[1], a[2], 3, 0, a[5], a[6], False)
    explicit = deform_psroi_pool(inp, rois, off, a[0], a[1], a[2], 3, 3, a[5], a[6], False)
    torch.testing.assert_close(implicit, explicit, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_default_arguments(device):
    # part_size=0 (pooled), sample_per_part=4, trans_std=0.0, no_trans=False
    case, inp, rois, _ = _semantics_case(device)
    off = torch.randn(rois.shape[0], 2, 3, 3, dtype=F64, device=device)
    out = deform_psroi_pool(inp, rois, off, 0.5, 2, 3, 3)
    expected = deform_psroi_pool_reference(inp.cpu(), rois.cpu(), off.cpu(),
                                           0.5, 2, 3, 3, 0, 4, 0.0, False)
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_inputs(device):
    case, inp, rois, off = _semantics_case(device)
    expected = deform_psroi_pool(inp, rois, off, *case.op_args())
    inp_nc = inp.to(memory_format=torch.channels_last)
    rois_nc = torch.stack([rois, rois], dim=2)[:, :, 0]
    assert torch.equal(rois_nc, rois) and not rois_nc.is_contiguous()
    off_nc = off.transpose(2, 3).contiguous().transpose(2, 3)
    assert not off_nc.is_contiguous()
    out = deform_psroi_pool(inp_nc, rois_nc, off_nc, *case.op_args())
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_reaches_input_and_offset_not_rois(device):
    case, inp, rois, off = _semantics_case(device)
    inp.requires_grad_(True)
    off.requires_grad_(True)
    deform_psroi_pool(inp, rois, off, *case.op_args()).sum().backward()
    assert inp.grad is not None and inp.grad.abs().sum() > 0
    assert off.grad is not None and off.grad.abs().sum() > 0
    assert rois.grad is None


# ------------------------------------- validation ---------------------------------------


def _valid_args():
    inp = torch.randn(2, 2 * 9, 6, 6)
    rois = torch.tensor([[0, 1.0, 1.0, 8.0, 8.0], [1, 2.0, 0.0, 5.0, 9.0]])
    off = torch.zeros(2, 2, 3, 3)
    # input, rois, offset, spatial_scale, output_dim, group_size, pooled_size, part_size,
    # sample_per_part, trans_std, no_trans
    return [inp, rois, off, 0.5, 2, 3, 3, 0, 2, 0.1, False]


def test_valid_arguments_are_accepted():
    assert deform_psroi_pool(*_valid_args()).shape == (2, 2, 3, 3)


def _set(index, value):
    def mutate(args):
        args[index] = value(args) if callable(value) else value
    return mutate


def _set_roi(row, col, value):
    def mutate(args):
        args[1] = args[1].clone()
        args[1][row, col] = value
    return mutate


INVALID = [
    ("input-channels", _set(0, lambda a: torch.randn(2, 17, 6, 6)), "input"),
    ("input-not-4d", _set(0, lambda a: torch.randn(18, 6, 6)), "input"),
    ("rois-not-2d", _set(1, lambda a: a[1][0]), "rois"),
    ("rois-four-columns", _set(1, lambda a: a[1][:, :4].contiguous()), "rois"),
    ("rois-batch-index-too-large", _set_roi(1, 0, 2.0), "rois"),
    ("rois-batch-index-negative", _set_roi(0, 0, -1.0), "rois"),
    ("rois-batch-index-fractional", _set_roi(0, 0, 0.5), "rois"),
    ("rois-nan", _set_roi(0, 2, float("nan")), "rois"),
    ("rois-inf", _set_roi(1, 3, float("inf")), "rois"),
    ("offset-wrong-num-rois", _set(2, lambda a: torch.zeros(3, 2, 3, 3)), "offset"),
    ("offset-wrong-part-size", _set(2, lambda a: torch.zeros(2, 2, 2, 2)), "offset"),
    ("offset-odd-channels", _set(2, lambda a: torch.zeros(2, 3, 3, 3)), "offset"),
    ("offset-classes-not-dividing-output_dim",
     _set(2, lambda a: torch.zeros(2, 6, 3, 3)), "offset"),
    ("offset-not-4d", _set(2, lambda a: torch.zeros(2, 2, 9)), "offset"),
    ("offset-none-without-no_trans", _set(2, None), "offset"),
    ("spatial_scale-zero", _set(3, 0.0), "spatial_scale"),
    ("spatial_scale-negative", _set(3, -0.5), "spatial_scale"),
    ("output_dim-zero", _set(4, 0), "output_dim"),
    ("group_size-zero", _set(5, 0), "group_size"),
    ("pooled_size-zero", _set(6, 0), "pooled_size"),
    ("pooled_size-negative", _set(6, -3), "pooled_size"),
    ("part_size-negative", _set(7, -1), "part_size"),
    ("sample_per_part-zero", _set(8, 0), "sample_per_part"),
]


@pytest.mark.parametrize("mutate, name", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_argument_raises_value_error_naming_it(mutate, name):
    args = _valid_args()
    mutate(args)
    with pytest.raises(ValueError, match=re.escape(name)):
        deform_psroi_pool(*args)


# ----------------------------------- determinism ----------------------------------------


DETERMINISM_CASES = [c for c in CASES if c.name in (
    "g1-p7-s4-dpool", "g3-p3-s2-classes2", "g7-p7-s4-classes3", "g1-p5-part2-s3-classes4",
    "g6-p6-part4-s1-notrans")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", DETERMINISM_CASES, ids=[c.name for c in DETERMINISM_CASES])
def test_backward_under_deterministic_algorithms_is_repeatable_and_correct(case, device, deterministic_algorithms):
    """Under torch.use_deterministic_algorithms(True) the backward runs (CUDA switches to
    its atomic-free kernels), gives the same bits twice and matches the reference."""
    inp, rois, offset = _make_case(case, seed=7)
    # Every RoI twice: several RoIs scatter into the same input elements and offsets.
    rois = torch.cat([rois, rois.flip(0)])
    offset = torch.cat([offset, offset.flip(0)])
    grad_out = torch.randn(rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size,
                           generator=torch.Generator().manual_seed(3), dtype=F64)

    def grads(dtype):
        i = inp.to(device, dtype).requires_grad_(True)
        o = offset.to(device, dtype).requires_grad_(True)
        deform_psroi_pool(i, rois.to(device, dtype), o, *case.op_args()).backward(grad_out.to(device, dtype))
        return i.grad, (o.grad if o.grad is not None else torch.zeros_like(o))

    first, second = grads(torch.float32), grads(torch.float32)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])

    ref_inp, ref_off = inp.clone().requires_grad_(True), offset.clone().requires_grad_(True)
    deform_psroi_pool_reference(ref_inp, rois, ref_off, *case.op_args()).backward(grad_out)
    ours = grads(F64)
    torch.testing.assert_close(ours[0].cpu(), ref_inp.grad, rtol=1e-9, atol=1e-10)
    if not case.no_trans:
        torch.testing.assert_close(ours[1].cpu(), ref_off.grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_offset_skips_the_bins_that_read_it(bad, device):
    """docs/semantics.md section 2: a non-finite offset makes its bins' sample positions
    non-finite, so they are skipped (output 0, zero gradients), also with trans_std 0
    (0 x inf = NaN); every other bin is the no_trans result."""
    gen = torch.Generator().manual_seed(5)
    inp = torch.randn(1, 4 * 9, 8, 8, generator=gen, dtype=F64)
    rois = torch.tensor([[0, 1.0, 2.0, 6.0, 7.0], [0, 0.0, 0.0, 7.0, 5.0]], dtype=F64)
    offset = torch.zeros(2, 2, 3, 3, dtype=F64)
    offset[0, 0, 1, 2] = bad  # dx of RoI 0, bin (1, 2)
    args = (1.0, 4, 3, 3, 3, 2, 0.0, False)  # scale, output_dim, group, pooled, part, spp, trans_std 0
    i = inp.to(device).requires_grad_(True)
    o = offset.to(device).requires_grad_(True)
    out = deform_psroi_pool(i, rois.to(device), o, *args)
    out.sum().backward()
    plain = deform_psroi_pool(inp, rois, None, *args[:-1], True)
    expected = plain.clone()
    expected[0, :, 1, 2] = 0
    torch.testing.assert_close(out.detach().cpu(), expected, rtol=0, atol=1e-12)
    assert torch.isfinite(i.grad).all() and torch.isfinite(o.grad).all()
    assert torch.all(o.grad == 0)  # trans_std 0: no offset gradient anywhere
