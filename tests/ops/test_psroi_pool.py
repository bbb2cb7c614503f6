"""Tests of ``dcn_det.ops.psroi_pool`` (integer-bin PS-RoI pooling, MXNet contrib.PSROIPooling;
docs/semantics.md, "Integer-bin PS-RoI pooling").

Checked against the plain-Python reference of ``psroi_pool_reference.py`` (written from the
semantics, bin bounds evaluated in the operator's dtype) and values derived on paper.
Tests that take a ``device`` run on the CPU kernel, on the device (CUDA) algorithm executed
on the host (``device_path``) and on CUDA when present (devices.py). MXNet itself is
compared in tests/verify_mxnet/test_psroi_pool_vs_mxnet.py.
"""
import contextlib
import functools
import math
import re
from dataclasses import dataclass

import pytest
import torch

from dcn_det.ops import psroi_pool
from dcn_det.ops._device_path import host_device_path, test_hooks

from tests.ops.devices import DEVICES, requires_cuda
from tests.ops.psroi_pool_reference import c_round, psroi_pool_reference

F32, F64 = torch.float32, torch.float64


@dataclass(frozen=True)
class Case:
    name: str
    N: int
    H: int
    W: int
    output_dim: int
    group_size: int
    pooled_size: int
    spatial_scale: float

    def op_args(self):
        return (self.spatial_scale, self.output_dim, self.group_size, self.pooled_size)


CASES = [
    Case("g1-p1", 1, 5, 6, 3, 1, 1, 1.0),
    Case("g1-p2-scale0.5", 2, 7, 6, 2, 1, 2, 0.5),
    Case("g1-p7-roipool", 2, 9, 8, 4, 1, 7, 0.0625),
    Case("g2-p2", 2, 6, 7, 2, 2, 2, 0.5),
    Case("g3-p3", 2, 8, 9, 3, 3, 3, 0.25),
    Case("g3-p2-group-gt-pooled", 1, 6, 7, 2, 3, 2, 1.0),
    Case("g2-p5-group-lt-pooled", 2, 9, 9, 2, 2, 5, 0.5),
    Case("g4-p4", 2, 8, 8, 2, 4, 4, 0.5),
    Case("g5-p5-scale0.3", 2, 9, 10, 2, 5, 5, 0.3),
    Case("g6-p6", 1, 10, 9, 2, 6, 6, 0.5),
    Case("g7-p7-rfcn", 2, 12, 11, 3, 7, 7, 0.0625),
    Case("g3-p7", 2, 10, 10, 2, 3, 7, 0.25),
    Case("g1-p3-three-images", 3, 6, 6, 2, 1, 3, 1.0),
    Case("g3-p5-scale0.3", 1, 24, 24, 2, 3, 5, 0.3),
    Case("g7-p7-scale0.7", 1, 20, 20, 1, 7, 7, 0.7),
]


def _make_rois(gen, N, H, W, scale):
    """RoIs of every kind, in image coordinates; batch indices cycle through 0..N-1, and one
    RoI has an out-of-range batch index."""
    iw, ih = W / scale, H / scale

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand((), generator=gen, dtype=F64).item()

    rows = []
    x1, y1 = u(0, 0.5 * iw), u(0, 0.5 * ih)
    rows.append([x1, y1, u(x1, iw - 1), u(y1, ih - 1)])  # inside, fractional corners
    rows.append([u(-0.5 * iw, 0), u(-0.5 * ih, 0), u(0.2 * iw, 0.8 * iw), u(0.2 * ih, 0.8 * ih)])  # top-left out
    rows.append([u(0.5 * iw, iw), u(0.5 * ih, ih), u(iw, 1.5 * iw), u(ih, 1.5 * ih)])  # bottom-right out
    rows.append([u(1.2 * iw, 1.5 * iw), u(-ih, -0.6 * ih), u(1.6 * iw, 2 * iw), u(-0.5 * ih, -0.3 * ih)])  # all out
    x1, y1 = u(0.4 * iw, 0.9 * iw), u(0.4 * ih, 0.9 * ih)
    rows.append([x1, y1, x1 - u(1, 0.3 * iw), y1 - u(1, 0.3 * ih)])  # degenerate: x2 < x1, y2 < y1
    x1, y1 = u(0, iw - 1), u(0, ih - 1)
    rows.append([x1, y1, x1 + u(0, 0.4), y1])  # tiny
    a, b = math.floor(u(1, 0.5 * iw)) + 0.5, math.floor(u(1, 0.5 * ih)) + 0.5
    rows.append([a, b, a + 2 * math.floor(u(1, 0.4 * iw)) + 1.0, b + 3.0])  # exact halves
    rows.append([-0.5 - math.floor(u(0, 3)), -2.5, 0.5 * iw - 0.5, 0.5 * ih + 0.5])  # negative halves
    rows.append([0.0, 0.0, iw - 1, ih - 1])  # the whole map
    rows.append([u(0, 0.3 * iw), u(0, 0.3 * ih), u(0.5 * iw, iw), u(0.5 * ih, ih)])
    rois = torch.tensor(rows, dtype=F64)
    batch = torch.arange(len(rows), dtype=F64) % N
    batch[-1] = N  # out of range: pools zeros
    return torch.cat([batch[:, None], rois], dim=1)


def _make_case(case: Case, seed: int = 0, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    channels = case.output_dim * case.group_size ** 2
    inp = torch.randn(case.N, channels, case.H, case.W, generator=gen, dtype=F64)
    rois = _make_rois(gen, case.N, case.H, case.W, case.spatial_scale)
    return inp.to(dtype), rois.to(dtype)


def _reference(inp, rois, case):
    return psroi_pool_reference(inp.cpu(), rois.cpu(), *case.op_args(), bounds_dtype=inp.dtype)


# tolerance by dtype: float64 sums of <= H*W terms; float32: sums of <= 120 O(1) terms in
# float32 (a few 1e-7 relative each), against the float64 reference on the same bins
TOL = {F64: dict(rtol=1e-12, atol=1e-12), F32: dict(rtol=1e-5, atol=1e-5)}
DTYPES = [pytest.param(F32, id="f32"), pytest.param(F64, id="f64")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward_matches_reference(case, device, dtype):
    inp, rois = _make_case(case, dtype=dtype)
    expected = _reference(inp, rois, case)
    out = psroi_pool(inp.to(device), rois.to(device), *case.op_args())
    assert out.shape == (rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size)
    assert out.dtype == dtype and out.device.type == device
    assert expected.abs().sum() > 0
    assert not expected[-1].any() and not out[-1].any()  # out-of-range batch index
    torch.testing.assert_close(out.cpu().double(), expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backward_matches_reference(case, device, dtype):
    inp, rois, grad_out, ref_grad = _reference_backward(case, dtype)
    op_inp = inp.clone().to(device).requires_grad_(True)  # a copy: the cached input stays a leaf without grad
    psroi_pool(op_inp, rois.to(device), *case.op_args()).backward(grad_out.to(device, dtype))
    assert op_inp.grad.dtype == dtype
    torch.testing.assert_close(op_inp.grad.cpu().double(), ref_grad, **TOL[dtype])


@functools.lru_cache(maxsize=None)
def _reference_backward(case, dtype):
    """(input, rois, grad_output, the reference's input gradient) of a case; cached because
    the Python-loop reference is the slow part and every device compares with the same one."""
    inp, rois = _make_case(case, dtype=dtype)
    grad_out = torch.randn(rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size,
                           generator=torch.Generator().manual_seed(1), dtype=F64)
    ref_inp = inp.clone().double().requires_grad_(True)  # a copy even for float64: inp stays grad-free
    psroi_pool_reference(ref_inp, rois, *case.op_args(), bounds_dtype=dtype).backward(grad_out)
    return inp, rois, grad_out, ref_inp.grad


# ----------------------------------- hand-computed --------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_hand_computed_values_and_gradient(device):
    # 4x4 map holding 0..15; RoI (0, 0, 0, 3, 3) at scale 1 is the whole map, 4 px wide:
    # 2x2 bins of 2x2 pixels, means of {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}.
    inp = torch.arange(16, dtype=F64, device=device).reshape(1, 1, 4, 4).requires_grad_(True)
    rois = torch.tensor([[0, 0.0, 0.0, 3.0, 3.0],
                         # (0.4 -> 0, 2.5 -> 3): 4 px; scale 0.5 -> [0, 2): 2x2 bins of one pixel
                         [0, 0.4, 0.4, 2.5, 2.5],
                         # degenerate: width 0.1 at x = 1*0.5: bin [floor(0.5), ceil(0.6)) = pixel 0
                         [0, 1.0, 1.0, -7.0, -7.0]], dtype=F64, device=device)
    out = psroi_pool(inp, rois[:1], 1.0, 1, 1, 2)
    torch.testing.assert_close(out.cpu(), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]], dtype=F64), rtol=0, atol=0)
    out2 = psroi_pool(inp.detach(), rois[1:], 0.5, 1, 1, 2)
    torch.testing.assert_close(out2.cpu()[0], torch.tensor([[[0.0, 1.0], [4.0, 5.0]]], dtype=F64), rtol=0, atol=0)
    # degenerate RoI: start 0.5, size 0.1, bins of 0.05: [floor(0.5), ceil(0.55)) = [0, 1) for both bins
    torch.testing.assert_close(out2.cpu()[1], torch.zeros(1, 2, 2, dtype=F64), rtol=0, atol=0)
    out.sum().backward()
    torch.testing.assert_close(inp.grad.cpu(), torch.full((1, 1, 4, 4), 0.25, dtype=F64), rtol=0, atol=0)


def test_degenerate_roi_reads_one_pixel():
    # start 1 * 1.0 = 1, end (round(0.2) + 1) * 1 = 1 -> size 0.1, bins [floor(1), ceil(1.05)) = pixel 1
    inp = torch.arange(16, dtype=F64).reshape(1, 1, 4, 4)
    out = psroi_pool(inp, torch.tensor([[0, 1.0, 1.0, 0.2, 0.2]], dtype=F64), 1.0, 1, 1, 2)
    torch.testing.assert_close(out, torch.full((1, 1, 2, 2), 5.0, dtype=F64), rtol=0, atol=0)


def test_c_round_sends_halves_away_from_zero():
    # x1 = 0.5 -> 1 (torch.round would give 0), x2 = 2.5 -> 3: columns [1, 4); y: -0.5 -> -1 -> clamped 0
    inp = torch.arange(16, dtype=F64).reshape(1, 1, 4, 4)
    out = psroi_pool(inp, torch.tensor([[0, 0.5, -0.5, 2.5, 0.0]], dtype=F64), 1.0, 1, 1, 1)
    # rows [-1, 1) -> [0, 1), columns [1, 4): mean of 1, 2, 3
    torch.testing.assert_close(out, torch.full((1, 1, 1, 1), 2.0, dtype=F64), rtol=0, atol=0)
    assert c_round(0.5) == 1 and c_round(-0.5) == -1 and c_round(2.5) == 3 and c_round(0.49999997) == 0


@pytest.mark.parametrize("device", DEVICES)
def test_float32_bin_edges_are_computed_in_float32(device):
    """At scale 0.3 the RoI (11, 29, 27, 57) has the bin edge 1 * bin_w + start_w = 5.0000005
    in float32 and exactly 5 in float64: its ceil ends the first bin column at 6, or at 5. The float32
    operator takes the float32 edges (MXNet's), the float64 operator the float64 ones."""
    gen = torch.Generator().manual_seed(21)
    inp = torch.randn(1, 9, 30, 30, generator=gen, dtype=F64)
    rois = torch.tensor([[0, 11.0, 29.0, 27.0, 57.0]], dtype=F64)
    args = (0.3, 1, 3, 3)
    ref32 = psroi_pool_reference(inp.float(), rois, *args, bounds_dtype=F32)
    ref64 = psroi_pool_reference(inp.float(), rois, *args, bounds_dtype=F64)
    assert (ref32 - ref64).abs().max() > 1e-2  # the edge does move
    out32 = psroi_pool(inp.float().to(device), rois.float().to(device), *args).cpu().double()
    torch.testing.assert_close(out32, ref32, **TOL[F32])
    out64 = psroi_pool(inp.float().double().to(device), rois.to(device), *args).cpu()
    torch.testing.assert_close(out64, ref64, **TOL[F64])


def test_position_sensitive_channels():
    # group 2, pooled 2: bin (ph, pw) reads channel (ctop * 2 + ph) * 2 + pw; constant planes
    inp = torch.arange(8, dtype=F64)[None, :, None, None].expand(1, 8, 5, 5).contiguous()
    out = psroi_pool(inp, torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]], dtype=F64), 1.0, 2, 2, 2)
    torch.testing.assert_close(out[0], torch.arange(8, dtype=F64).reshape(2, 2, 2), rtol=0, atol=0)


# ------------------------------------ gradcheck -----------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", [CASES[4], CASES[6], CASES[10]], ids=lambda c: c.name)
def test_gradcheck_input(case, device):
    inp, rois = _make_case(case, seed=2)
    inp = inp.to(device).requires_grad_(True)
    rois = rois.to(device)
    # Slow mode perturbs every input element (one forward each): for the larger inputs (39k
    # elements for g7-p7) the fast mode, which checks the Jacobian against finite differences
    # along random directions, tests the same gradient in a fraction of the time (CI runs this
    # file under coverage and ASan too).
    assert torch.autograd.gradcheck(lambda i: psroi_pool(i, rois, *case.op_args()), (inp,), eps=1e-6, atol=1e-8,
                                    nondet_tol=1e-12, fast_mode=inp.numel() > 5000)


# ------------------------------- device path vs CPU kernel ------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_host_device_path_equals_cpu_kernel(case, dtype):
    """The GPU's element ops, run on the host, give the CPU kernel's forward bit for bit (one
    body of math), and its backward up to the order of the atomic adds."""
    inp, rois = _make_case(case, seed=4, dtype=dtype)
    rois = torch.cat([rois, rois.flip(0)])  # RoIs that scatter into the same pixels
    grad_out = torch.randn(rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size,
                           generator=torch.Generator().manual_seed(6), dtype=dtype)
    results = []
    for on in (False, True):
        with host_device_path(column_budget=1) if on else contextlib.nullcontext():
            i = inp.clone().requires_grad_(True)
            out = psroi_pool(i, rois, *case.op_args())
            out.backward(grad_out)
            results.append((out.detach(), i.grad))
    assert torch.equal(results[0][0], results[1][0])
    torch.testing.assert_close(results[1][1], results[0][1], **TOL[dtype])


# ----------------------------------- determinism ----------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", [CASES[2], CASES[10], CASES[11]], ids=lambda c: c.name)
def test_backward_under_deterministic_algorithms_is_repeatable_and_equals_cpu(case, device, deterministic_algorithms):
    """Under torch.use_deterministic_algorithms(True) the device algorithms switch to the
    owner op, the CPU kernel's own: the same bits twice, and the CPU kernel's bits."""
    inp, rois = _make_case(case, seed=7, dtype=F32)
    rois = torch.cat([rois, rois.flip(0), rois])
    grad_out = torch.randn(rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size,
                           generator=torch.Generator().manual_seed(3))

    def grad(dev):
        i = inp.to(dev).requires_grad_(True)
        psroi_pool(i, rois.to(dev), *case.op_args()).backward(grad_out.to(dev))
        return i.grad.cpu()

    first, second = grad(device), grad(device)
    assert torch.equal(first, second)
    with test_hooks(host_device_path=False):
        cpu = grad("cpu")
    assert torch.equal(first, cpu)


def test_cpu_backward_is_deterministic_without_the_switch():
    case = CASES[10]
    inp, rois = _make_case(case, seed=8, dtype=F32)
    rois = torch.cat([rois] * 4)
    grad_out = torch.randn(rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size)
    grads = []
    for _ in range(3):
        i = inp.clone().requires_grad_(True)
        psroi_pool(i, rois, *case.op_args()).backward(grad_out)
        grads.append(i.grad)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2])


# ---------------------------------- special inputs --------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_zero_rois_give_empty_output_and_zero_gradient(device):
    inp = torch.randn(2, 2 * 9, 6, 6, dtype=F64, device=device, requires_grad=True)
    out = psroi_pool(inp, torch.zeros(0, 5, dtype=F64, device=device), 0.5, 2, 3, 3)
    assert out.shape == (0, 2, 3, 3) and out.dtype == F64 and out.device.type == device
    out.sum().backward()
    assert inp.grad is not None and inp.grad.shape == inp.shape and not inp.grad.any()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("index", [-1.0, 2.0, 7.0, math.nan, -math.inf], ids=["-1", "N", "7", "nan", "-inf"])
def test_out_of_range_batch_index_pools_zeros_and_gets_no_gradient(index, device):
    inp = torch.randn(2, 4, 6, 6, dtype=F64, device=device, requires_grad=True)
    rois = torch.tensor([[index, 0.0, 0.0, 5.0, 5.0], [1, 1.0, 1.0, 4.0, 4.0]], dtype=F64, device=device)
    out = psroi_pool(inp, rois, 1.0, 1, 2, 2)
    assert not out[0].any() and out[1].abs().sum() > 0
    out[0].sum().backward()
    assert not inp.grad.any()


@pytest.mark.parametrize("device", DEVICES)
def test_non_finite_coordinates_give_empty_bins(device):
    inp = torch.randn(1, 1, 5, 5, dtype=F64, device=device)
    rois = torch.tensor([[0, math.nan, 0.0, 3.0, 3.0], [0, 0.0, 0.0, math.inf, 3.0], [0, -math.inf, 0.0, 2.0, 2.0]],
                        dtype=F64, device=device)
    out = psroi_pool(inp, rois, 1.0, 1, 1, 2)
    assert torch.isfinite(out).all()
    assert not out[0].any()


def test_fractional_batch_index_truncates():
    inp = torch.randn(2, 1, 5, 5, dtype=F64)
    r = [[1.7, 0.0, 0.0, 3.0, 3.0]]
    torch.testing.assert_close(psroi_pool(inp, torch.tensor(r, dtype=F64), 1.0, 1, 1, 2),
                               psroi_pool(inp, torch.tensor([[1.0] + r[0][1:]], dtype=F64), 1.0, 1, 1, 2),
                               rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_inputs(device):
    case = CASES[4]
    inp, rois = _make_case(case, seed=9)
    inp, rois = inp.to(device), rois.to(device)
    expected = psroi_pool(inp, rois, *case.op_args())
    rois_nc = torch.stack([rois, rois], dim=2)[:, :, 0]
    assert not rois_nc.is_contiguous()
    out = psroi_pool(inp.to(memory_format=torch.channels_last), rois_nc, *case.op_args())
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_float32_rois_with_float64_input_are_read_in_float64():
    case = CASES[4]
    inp, rois = _make_case(case, seed=10)
    torch.testing.assert_close(psroi_pool(inp, rois.float(), *case.op_args()),
                               psroi_pool(inp, rois.float().double(), *case.op_args()), rtol=0, atol=0)


LOW_PRECISION = [pytest.param(torch.float16, 2e-3, id="float16"), pytest.param(torch.bfloat16, 1.6e-2, id="bfloat16")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, tol", LOW_PRECISION)
def test_low_precision_is_float32_rounded(dtype, tol, device):
    # computed in float32 and rounded once: the output is the float32 result rounded
    case = CASES[4]
    inp, rois = _make_case(case, seed=3)
    inp = inp.to(dtype).to(device).requires_grad_(True)
    rois = rois.float().to(device)
    out = psroi_pool(inp, rois, *case.op_args())
    assert out.dtype == dtype
    ref = psroi_pool(inp.detach().float(), rois, *case.op_args())
    torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol)
    out.float().sum().backward()
    assert inp.grad.dtype == dtype and inp.grad.float().abs().sum() > 0


@pytest.mark.parametrize("device, dtype", [pytest.param("cpu", torch.bfloat16, id="cpu-bf16"),
                                           pytest.param("cuda", torch.float16, id="cuda-f16", marks=requires_cuda)])
def test_autocast_casts_input_not_rois(device, dtype):
    case = CASES[10]
    inp, rois = _make_case(case, seed=5, dtype=F32)
    inp, rois = inp.to(device), rois.to(device)
    with torch.autocast(device, dtype=dtype):
        out = psroi_pool(inp, rois, *case.op_args())
    assert out.dtype == dtype
    torch.testing.assert_close(out, psroi_pool(inp.to(dtype), rois, *case.op_args()), rtol=0, atol=0)
    assert not torch.equal(out, psroi_pool(inp.to(dtype), rois.to(dtype), *case.op_args()))  # rois kept float32


# ----------------------------------- opcheck / compile ----------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    case = CASES[4]
    inp, rois = _make_case(case, seed=11)
    args = (inp.to(device).requires_grad_(True), rois.to(device)) + case.op_args()
    torch.library.opcheck(torch.ops.dcn_det.psroi_pool.default, args)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_backward_op(device):
    case = CASES[4]
    inp, rois = _make_case(case, seed=12)
    grad_out = torch.randn(rois.shape[0], case.output_dim, case.pooled_size, case.pooled_size, dtype=F64)
    args = (grad_out.to(device), inp.to(device), rois.to(device)) + case.op_args()
    torch.library.opcheck(torch.ops.dcn_det._psroi_pool_backward.default, args)


def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        inp = torch.empty(2, 3 * 49, 20, 30)
        rois = torch.empty(11, 5)
        out = psroi_pool(inp, rois, 0.0625, 3, 7, 7)
        assert out.shape == (11, 3, 7, 7)
    meta = psroi_pool(torch.empty(1, 8, 4, 4, device="meta"), torch.empty(3, 5, device="meta"), 1.0, 2, 2, 2)
    assert meta.shape == (3, 2, 2, 2) and meta.device.type == "meta"


def _call(inp, rois):
    return psroi_pool(inp, rois, 0.25, 3, 3, 3)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph_matches_eager(device):
    inp, rois = _make_case(CASES[4], seed=13)
    inp, rois = inp.to(device), rois.to(device)
    torch._dynamo.reset()
    compiled = torch.compile(_call, fullgraph=True, backend="aot_eager")
    grads = []
    for fn in (_call, compiled):
        i = inp.clone().requires_grad_(True)
        out = fn(i, rois)
        out.square().sum().backward()
        grads.append((out.detach(), i.grad))
    assert torch.equal(grads[1][0], grads[0][0])
    # the device path's backward adds atomically, in whatever order its threads run
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-12, atol=1e-12)


def test_onnx_export_is_refused_clearly(monkeypatch):
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    with pytest.raises(NotImplementedError, match="psroi_pool.*ONNX"):
        psroi_pool(torch.randn(1, 4, 4, 4), torch.zeros(1, 5), 1.0, 1, 2, 2)


def test_double_backward_says_it_is_not_supported():
    inp = torch.randn(1, 4, 4, 4, dtype=F64, requires_grad=True)
    out = psroi_pool(inp, torch.tensor([[0, 0.0, 0.0, 3.0, 3.0]], dtype=F64), 1.0, 1, 2, 2)
    (g,) = torch.autograd.grad(out.sum(), inp, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward is not supported"):
        g.sum().backward()


# ------------------------------------- validation ---------------------------------------


def _valid_args():
    # input, rois, spatial_scale, output_dim, group_size, pooled_size
    return [torch.randn(2, 2 * 9, 6, 6), torch.tensor([[0, 1.0, 1.0, 8.0, 8.0], [1, 2.0, 0.0, 5.0, 9.0]]),
            0.5, 2, 3, 3]


def test_valid_arguments_are_accepted():
    assert psroi_pool(*_valid_args()).shape == (2, 2, 3, 3)


def _set(index, value):
    def mutate(args):
        args[index] = value(args) if callable(value) else value
    return mutate


INVALID = [
    ("input-channels", _set(0, lambda a: torch.randn(2, 17, 6, 6)), "input must have output_dim * group_size^2 = 2 * 3^2 = 18 channels"),
    ("input-not-4d", _set(0, lambda a: torch.randn(18, 6, 6)), "input must be 4-D [N, output_dim*group_size^2, H, W]"),
    ("input-int", _set(0, lambda a: torch.zeros(2, 18, 6, 6, dtype=torch.int32)), "input must be float32"),
    ("rois-not-2d", _set(1, lambda a: a[1][0]), "rois must have shape [R, 5]"),
    ("rois-four-columns", _set(1, lambda a: a[1][:, :4].contiguous()), "rois must have shape [R, 5]"),
    ("rois-int", _set(1, lambda a: a[1].long()), "rois must be a floating-point tensor"),
    ("spatial_scale-zero", _set(2, 0.0), "spatial_scale must be a positive"),
    ("spatial_scale-negative", _set(2, -0.5), "spatial_scale must be a positive"),
    ("spatial_scale-nan", _set(2, math.nan), "spatial_scale must be a positive"),
    ("output_dim-zero", _set(3, 0), "output_dim must be >= 1"),
    ("group_size-zero", _set(4, 0), "group_size must be >= 1"),
    ("pooled_size-zero", _set(5, 0), "pooled_size must be >= 1"),
    ("pooled_size-negative", _set(5, -3), "pooled_size must be >= 1"),
]


@pytest.mark.parametrize("mutate, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_argument_raises_value_error_naming_it(mutate, message):
    args = _valid_args()
    mutate(args)
    with pytest.raises(ValueError, match=re.escape(message)):
        psroi_pool(*args)


@pytest.mark.parametrize("index, value, name", [(0, "x", "input"), (1, [[0, 1, 1, 2, 2]], "rois"),
                                                (3, 2.0, "output_dim"), (5, "7", "pooled_size")])
def test_wrong_python_types_raise_type_error_naming_the_argument(index, value, name):
    args = _valid_args()
    args[index] = value
    with pytest.raises(TypeError, match=name):
        psroi_pool(*args)


def test_backward_op_checks_grad_output_shape():
    inp, rois = _valid_args()[:2]
    with pytest.raises(ValueError, match=re.escape("grad_output must have shape [2, 2, 3, 3]")):
        torch.ops.dcn_det._psroi_pool_backward(torch.zeros(2, 2, 3), inp, rois, 0.5, 2, 3, 3)
