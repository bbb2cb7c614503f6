"""Correctness tests for ``dcn_det.ops.deform_conv2d`` (docs/semantics.md section 1).

The ground truth is ``deform_conv2d_reference.deform_conv2d_ref``: a plain, vectorised
PyTorch implementation written from the spec; autograd through it gives the reference
gradients. torchvision.ops.deform_conv2d (same contract) and F.conv2d (zero offsets)
are used as second opinions.

The tests that take a ``device`` run on the CPU kernel, on the device (CUDA) algorithm
executed on the host (``device_path``: the GPU's element math, checked in CI) and on
CUDA (skipped when no GPU is present or the CUDA kernels were not compiled in); see
devices.py.
"""
import contextlib
import dataclasses
import math
from typing import Optional, Tuple

import pytest
import torch
import torch.nn.functional as F

from dcn_det.ops import available_cpu_isas, deform_conv2d
from dcn_det.ops._cpu_isa import forced_cpu_isa
from dcn_det.ops._device_path import test_hooks

from .deform_conv2d_reference import _pair, deform_conv2d_ref, out_size
from .devices import CUDA_OK, CUDA_SKIP, DEVICES

OP = torch.ops.dcn_det.deform_conv2d.default
GRAD_NAMES = ("input", "offset", "weight", "bias", "mask")


@dataclasses.dataclass(frozen=True)
class Case:
    """One deform_conv2d configuration. ``scale`` multiplies N(0, 1) offsets."""

    n: int
    c: int
    h: int
    w: int
    co: int
    k: Tuple[int, int]
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    og: int = 1  # deformable (offset) groups
    mask: bool = True
    bias: bool = True
    scale: float = 3.0

    @property
    def out_hw(self) -> Tuple[int, int]:
        (sh, sw), (ph, pw), (dh, dw) = _pair(self.stride), _pair(self.padding), _pair(self.dilation)
        return (out_size(self.h, self.k[0], sh, ph, dh), out_size(self.w, self.k[1], sw, pw, dw))

    def __str__(self) -> str:
        return (
            f"n{self.n}c{self.c}x{self.h}x{self.w}-co{self.co}-k{self.k[0]}x{self.k[1]}"
            f"-s{self.stride}-p{self.padding}-d{self.dilation}-g{self.groups}-og{self.og}"
            f"-{'mask' if self.mask else 'nomask'}-{'bias' if self.bias else 'nobias'}-x{self.scale}"
        ).replace(" ", "")


def make_inputs(case: Case, seed: int, dtype=torch.float64, device="cpu", offset_mode="random"):
    """Fresh random (input, offset, weight, bias, mask) for ``case``, generated on CPU.

    offset_mode "random": N(0,1) * scale (non-integer with probability 1);
    "fractional": integer in [-2, 2] + uniform(0.1, 0.9), so every sample point is at
    least 0.1 away from an integer (safe for finite differences); "integer": integer in
    [-2, 2] (every sample point on a kink); "zero": all zeros.
    """
    g = torch.Generator().manual_seed(seed)
    kh, kw = case.k
    ho, wo = case.out_hw
    assert ho > 0 and wo > 0, case
    taps = kh * kw
    x = torch.randn(case.n, case.c, case.h, case.w, generator=g, dtype=torch.float64)
    weight = torch.randn(case.co, case.c // case.groups, kh, kw, generator=g, dtype=torch.float64)
    weight /= math.sqrt(weight[0].numel())
    off_shape = (case.n, 2 * case.og * taps, ho, wo)
    if offset_mode == "random":
        offset = torch.randn(off_shape, generator=g, dtype=torch.float64) * case.scale
    elif offset_mode == "fractional":
        offset = torch.randint(-2, 3, off_shape, generator=g).double()
        offset += 0.1 + 0.8 * torch.rand(off_shape, generator=g, dtype=torch.float64)
    elif offset_mode == "integer":
        offset = torch.randint(-2, 3, off_shape, generator=g).double()
    elif offset_mode == "zero":
        offset = torch.zeros(off_shape, dtype=torch.float64)
    else:
        raise ValueError(offset_mode)
    bias = torch.randn(case.co, generator=g, dtype=torch.float64) if case.bias else None
    mask = torch.rand(case.n, case.og * taps, ho, wo, generator=g, dtype=torch.float64) if case.mask else None

    def cvt(t):
        return None if t is None else t.to(device=device, dtype=dtype)

    return cvt(x), cvt(offset), cvt(weight), cvt(bias), cvt(mask)


def conv_kwargs(case: Case) -> dict:
    return dict(stride=case.stride, padding=case.padding, dilation=case.dilation)


def run_with_grads(fn, tensors, grad_out_seed: int, **kwargs):
    """Run ``fn(input, offset, weight, bias, mask=...)`` and return (out, grads).

    ``tensors`` is (input, offset, weight, bias, mask) of leaf tensors or None; the
    backward uses a random grad_output; grads are None for absent tensors.
    """
    # detach() (not clone()) keeps the caller's strides: sliced / expanded views stay views.
    leaves = [None if t is None else t.detach().requires_grad_() for t in tensors]
    x, offset, weight, bias, mask = leaves
    out = fn(x, offset, weight, bias, mask=mask, **kwargs)
    g = torch.Generator().manual_seed(grad_out_seed)
    grad_out = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out)
    present = [t for t in leaves if t is not None]
    grads = iter(torch.autograd.grad(out, present, grad_out))
    return out.detach(), [None if t is None else next(grads) for t in leaves]


def assert_grads_close(grads, ref_grads, **tol):
    for name, got, exp in zip(GRAD_NAMES, grads, ref_grads):
        if exp is None:
            assert got is None
            continue
        torch.testing.assert_close(got, exp, msg=lambda m, name=name: f"grad {name}: {m}", **tol)


# ---------------------------------------------------------------------------------------
# Reference agreement (float64): forward and all five gradients.
# Drawn so that every value of every axis appears (not a cartesian product):
#   kernel 1x1, 2x2, 3x3, 5x5, 3x2, 1x3, 2x3, 3x1; stride 1, 2, (1,2), (2,1);
#   padding 0, 1, 2, (0,2), (1,0); dilation 1, 2, (2,1), (1,2); groups 1, 2;
#   deformable groups 1-4; mask on/off; bias on/off; batch 1-5; offset scale 0.5-10
#   (scale >= 3 puts many samples outside the map or straddling its border).
# ---------------------------------------------------------------------------------------
REF_CASES = [
    Case(1, 2, 5, 5, 3, (1, 1), 1, 0, 1, 1, 1, mask=False, bias=False, scale=3),
    Case(2, 4, 6, 5, 4, (1, 1), 2, 1, 1, 2, 2, mask=True, bias=True, scale=5),
    Case(3, 4, 5, 6, 2, (1, 1), 1, 2, 2, 1, 4, mask=True, bias=False, scale=4),
    Case(2, 3, 6, 6, 4, (3, 3), 1, 1, 1, 1, 1, mask=True, bias=True, scale=3),
    Case(3, 4, 7, 7, 3, (3, 3), 2, 0, 2, 1, 2, mask=False, bias=True, scale=4),
    Case(1, 8, 6, 7, 4, (3, 3), 1, 2, 2, 2, 4, mask=True, bias=False, scale=5),
    Case(4, 6, 6, 8, 4, (3, 3), (1, 2), (0, 2), (2, 1), 2, 3, mask=True, bias=True, scale=3),
    Case(5, 2, 5, 5, 2, (3, 3), 1, 1, 1, 1, 1, mask=False, bias=False, scale=0.5),
    Case(3, 4, 5, 9, 4, (3, 3), 2, 1, 1, 2, 2, mask=True, bias=True, scale=4),
    Case(2, 2, 6, 6, 2, (3, 3), 1, 1, 1, 2, 1, mask=False, bias=True, scale=10),
    Case(1, 2, 7, 7, 3, (5, 5), 1, 2, 1, 1, 1, mask=True, bias=False, scale=3),
    Case(2, 4, 8, 7, 4, (5, 5), 2, 1, 1, 2, 2, mask=False, bias=True, scale=5),
    Case(1, 4, 10, 9, 2, (5, 5), 1, 0, 2, 1, 4, mask=True, bias=True, scale=3),
    Case(2, 6, 7, 6, 2, (5, 5), (2, 1), 2, 1, 1, 3, mask=False, bias=False, scale=4),
    Case(5, 2, 6, 5, 3, (3, 2), 1, 1, 1, 1, 1, mask=True, bias=True, scale=3),
    Case(2, 4, 7, 7, 2, (3, 2), 2, 2, 2, 2, 4, mask=False, bias=False, scale=5),
    Case(3, 3, 6, 6, 3, (3, 2), (2, 1), (1, 0), 1, 1, 3, mask=True, bias=False, scale=4),
    Case(2, 4, 5, 6, 4, (1, 3), 1, 0, 1, 2, 1, mask=True, bias=True, scale=3),
    Case(4, 2, 6, 7, 2, (1, 3), 2, 1, 2, 1, 2, mask=False, bias=True, scale=4),
    Case(5, 4, 5, 5, 2, (1, 3), 1, 2, (1, 2), 2, 4, mask=True, bias=False, scale=5),
    Case(1, 6, 6, 6, 3, (2, 3), 1, 1, 1, 1, 2, mask=True, bias=True, scale=3),
    Case(3, 2, 7, 6, 2, (2, 2), 2, 0, 1, 1, 1, mask=True, bias=False, scale=4),
    Case(2, 4, 8, 6, 2, (3, 1), 1, 1, 2, 2, 2, mask=False, bias=True, scale=3),
    Case(4, 12, 5, 5, 6, (3, 3), 1, 1, 1, 2, 3, mask=True, bias=True, scale=3),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", REF_CASES, ids=str)
def test_matches_reference_forward_and_gradients(case, device):
    seed = REF_CASES.index(case)
    tensors = make_inputs(case, seed, device=device)
    out, grads = run_with_grads(deform_conv2d, tensors, seed, **conv_kwargs(case))
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, [None if t is None else t.cpu() for t in tensors], seed, **conv_kwargs(case))
    assert out.shape == (case.n, case.co, *case.out_hw)
    assert out.dtype == torch.float64 and out.device.type == device
    tol = dict(rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.cpu(), ref_out, **tol)
    assert_grads_close([None if gr is None else gr.cpu() for gr in grads], ref_grads, **tol)


# Wide channel counts: the CPU kernel works on runs of channels that share the
# weight group and the offset group (their gcd), splits them into blocks for the
# input gradient, and sums dot products in 8 lanes plus a tail. These cases give
# runs longer than one block, partial blocks, lane tails, and runs that cross from
# one offset group to the next inside a weight group (and vice versa).
WIDE_CASES = [
    Case(2, 50, 6, 7, 6, (3, 3), 1, 1, 1, 1, 1, mask=True, bias=True, scale=3),
    Case(1, 96, 5, 6, 8, (3, 3), 1, 1, 1, 2, 3, mask=True, bias=False, scale=3),
    Case(3, 40, 6, 6, 4, (3, 3), 2, 1, 1, 4, 2, mask=False, bias=True, scale=4),
    Case(1, 33, 7, 5, 3, (2, 3), 1, (1, 0), 2, 1, 1, mask=True, bias=True, scale=3),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", WIDE_CASES, ids=str)
def test_wide_channel_counts_match_reference(case, device):
    seed = 100 + WIDE_CASES.index(case)
    tensors = make_inputs(case, seed, device=device)
    out, grads = run_with_grads(deform_conv2d, tensors, seed, **conv_kwargs(case))
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, [None if t is None else t.cpu() for t in tensors], seed, **conv_kwargs(case))
    tol = dict(rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.cpu(), ref_out, **tol)
    assert_grads_close([None if gr is None else gr.cpu() for gr in grads], ref_grads, **tol)


def _sample_points(case: Case, offset: torch.Tensor):
    """Sampling coordinates (y, x), each [N, og, taps, Ho, Wo], from the spec formula."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(case.stride), _pair(case.padding), _pair(case.dilation)
    kh, kw = case.k
    ho, wo = case.out_hw
    i = torch.arange(kh, dtype=torch.float64).repeat_interleave(kw).view(-1, 1, 1)
    j = torch.arange(kw, dtype=torch.float64).repeat(kh).view(-1, 1, 1)
    base_y = torch.arange(ho, dtype=torch.float64).view(1, ho, 1) * sh - ph + i * dh
    base_x = torch.arange(wo, dtype=torch.float64).view(1, 1, wo) * sw - pw + j * dw
    off = offset.view(case.n, case.og, kh * kw, 2, ho, wo)
    return base_y + off[:, :, :, 0], base_x + off[:, :, :, 1]


def test_reference_cases_sample_outside_and_across_the_border():
    """Guard on the test data: with offsets scaled by >= 3 the cases exercise samples that
    are entirely outside the map and samples in the one-pixel band around it."""
    for seed, case in enumerate(REF_CASES):
        if case.scale < 3:
            continue
        _, offset, *_ = make_inputs(case, seed)
        y, x = _sample_points(case, offset)
        outside = (y <= -1) | (y >= case.h) | (x <= -1) | (x >= case.w)
        band = ~outside & ((y < 0) | (y > case.h - 1) | (x < 0) | (x > case.w - 1))
        assert 0.05 < outside.double().mean() < 0.98, case
        assert band.any(), case


@pytest.mark.parametrize("device", DEVICES)
def test_samples_in_the_border_band_match_reference(device):
    """1x1 kernel, sample points placed in the bands (-1, 0) and (H-1, H) and just outside.

    Inside those bands only some bilinear corners exist; the value (and the offset
    gradient) come from the in-map corners only; beyond them the sample is exactly 0.
    """
    n, c, h, w = 1, 2, 4, 5
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(3, c, 1, 1, generator=g, dtype=torch.float64)
    ys = torch.tensor([-1.5, -1.2, -0.7, -0.3, 0.4, h - 1.6, h - 0.8, h + 0.3], dtype=torch.float64)
    xs = torch.tensor([-1.3, -0.9, -0.1, 0.5, 2.2, w - 1.5, w - 0.6, w - 0.05, w + 0.4], dtype=torch.float64)
    target_y, target_x = torch.meshgrid(ys, xs, indexing="ij")
    # 1x1 kernel, stride 1, padding 2: output (i, j) has base position (i - 2, j - 2) and
    # the output is 8x9, one output per target point.
    pad = 2
    ho, wo = h + 2 * pad, w + 2 * pad
    assert (ho, wo) == target_y.shape
    offset = torch.zeros(n, 2, ho, wo, dtype=torch.float64)
    offset[0, 0] = target_y - (torch.arange(ho, dtype=torch.float64).view(ho, 1) - pad)
    offset[0, 1] = target_x - (torch.arange(wo, dtype=torch.float64).view(1, wo) - pad)
    mask = torch.rand(n, 1, ho, wo, generator=g, dtype=torch.float64)
    tensors = [t.to(device) if t is not None else None for t in (x, offset, weight, None, mask)]
    out, grads = run_with_grads(deform_conv2d, tensors, 0, padding=pad)
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, (x, offset, weight, None, mask), 0, padding=pad)
    torch.testing.assert_close(out.cpu(), ref_out, rtol=1e-10, atol=1e-10)
    assert_grads_close([None if gr is None else gr.cpu() for gr in grads], ref_grads, rtol=1e-10, atol=1e-10)
    outside = (target_y <= -1) | (target_y >= h) | (target_x <= -1) | (target_x >= w)
    assert outside.any()
    assert torch.all(out.cpu()[0][:, outside] == 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("far", [1e4, 1e9, 1e20, float("inf")], ids=["1e4", "1e9", "1e20", "inf"])
def test_samples_far_outside_give_bias_only_and_zero_offset_grad(far, device):
    case = Case(2, 4, 5, 5, 3, (3, 3), 1, 1, 1, 1, 2, mask=True, bias=True)
    x, offset, weight, bias, mask = make_inputs(case, 11, device=device)
    offset = torch.full_like(offset, far)
    offset[:, ::4] *= -1  # mix far-negative and far-positive dy/dx
    out, grads = run_with_grads(deform_conv2d, (x, offset, weight, bias, mask), 0, **conv_kwargs(case))
    torch.testing.assert_close(out, bias.view(1, -1, 1, 1).expand_as(out), rtol=0, atol=0)
    for name in ("input", "offset", "weight", "mask"):
        gr = grads[GRAD_NAMES.index(name)]
        assert torch.all(gr == 0), name


@pytest.mark.parametrize("device", DEVICES)
def test_mask_none_equals_unit_mask(device):
    case = Case(2, 4, 6, 6, 4, (3, 3), 1, 1, 1, 2, 2, mask=True, bias=True)
    x, offset, weight, bias, _ = make_inputs(case, 3, device=device)
    v1 = deform_conv2d(x, offset, weight, bias, padding=1)
    v2 = deform_conv2d(x, offset, weight, bias, padding=1, mask=torch.ones(2, 18, 6, 6, dtype=torch.float64, device=device))
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "case",
    [
        Case(7, 2, 4, 4, 2, (3, 3), 1, 1, 1, 1, 1, mask=True, bias=True),
        Case(67, 2, 4, 4, 2, (3, 3), 1, 1, 1, 1, 1, mask=True, bias=True),
        Case(2, 16, 16, 16, 8, (3, 3), 1, 1, 1, 2, 4, mask=True, bias=True, scale=3),
    ],
    ids=["batch7", "batch67", "larger-maps"],
)
@pytest.mark.parametrize("device", DEVICES)
def test_larger_and_odd_batch_sizes_match_reference(case, device):
    """Any batch size (no "batch must divide im2col_step" restriction); larger maps split
    the work across threads/chunks in the CPU kernels."""
    tensors = make_inputs(case, case.n, device=device)
    kw = conv_kwargs(case)
    out, grads = run_with_grads(deform_conv2d, tensors, 1, **kw)
    ref, ref_grads = run_with_grads(deform_conv2d_ref, [t.cpu() for t in tensors], 1, **kw)
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-9, atol=1e-9)
    assert_grads_close([g.cpu() for g in grads], ref_grads, rtol=1e-9, atol=1e-9)
    # Per-sample results equal the batched ones.
    x, offset, weight, bias, mask = tensors
    for i in (0, case.n // 2, case.n - 1):
        single = deform_conv2d(x[i : i + 1], offset[i : i + 1], weight, bias, mask=mask[i : i + 1], **kw)
        torch.testing.assert_close(single, out[i : i + 1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "requires_grad",
    [
        (True, False, False, False, False),
        (False, True, False, False, False),
        (False, False, True, True, False),
        (False, False, False, False, True),
        (False, True, False, False, True),
        (True, False, True, False, False),
    ],
    ids=["input", "offset", "weight-bias", "mask", "offset-mask", "input-weight"],
)
def test_gradients_when_only_some_arguments_require_grad(requires_grad):
    case = Case(2, 4, 6, 6, 4, (3, 3), 1, 1, 1, 2, 2, mask=True, bias=True)
    tensors = make_inputs(case, 20)
    g = torch.Generator().manual_seed(21)
    grad_out = torch.randn(2, 4, 6, 6, generator=g, dtype=torch.float64)
    results = []
    for fn in (deform_conv2d, deform_conv2d_ref):
        leaves = [t.detach().requires_grad_(rg) for t, rg in zip(tensors, requires_grad)]
        out = fn(*leaves[:4], mask=leaves[4], **conv_kwargs(case))
        results.append(torch.autograd.grad(out, [t for t in leaves if t.requires_grad], grad_out))
    for got, exp in zip(*results):
        torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["expanded", "channels_last", "permuted", "sliced"])
def test_non_contiguous_grad_output_matches_reference(layout, device):
    """The backward receives grad_output with whatever strides autograd produced: stride-0
    from ``out.sum()``, channels_last / permuted from later ops, a slice of a larger buffer."""
    case = Case(2, 4, 6, 6, 4, (3, 3), 1, 1, 1, 2, 2, mask=True, bias=True)
    tensors = make_inputs(case, 22, device=device)
    weights = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(23), dtype=torch.float64)

    def loss_of(out):
        w = weights.to(out.device)
        if layout == "expanded":
            return out.sum()
        if layout == "channels_last":
            return (out.contiguous(memory_format=torch.channels_last) * w).sum()
        if layout == "permuted":
            return (out.permute(0, 2, 3, 1) * w.permute(0, 2, 3, 1).contiguous()).sum()
        return (torch.cat([out, out], 1)[:, 4:] * w).sum()

    results = []
    for fn, ts in ((deform_conv2d, tensors), (deform_conv2d_ref, [t.cpu() for t in tensors])):
        leaves = [t.detach().requires_grad_() for t in ts]
        out = fn(*leaves[:4], mask=leaves[4], **conv_kwargs(case))
        results.append([gr.cpu() for gr in torch.autograd.grad(loss_of(out), leaves)])
    assert_grads_close(results[0], results[1], rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------
# Second opinion: torchvision.ops.deform_conv2d has the same contract.
# ---------------------------------------------------------------------------------------
TV_CASES = [
    Case(2, 4, 6, 6, 4, (3, 3), 1, 1, 1, 1, 1, mask=True, bias=True, scale=3),
    Case(3, 6, 7, 8, 4, (3, 2), (2, 1), (1, 2), (1, 2), 2, 3, mask=False, bias=True, scale=4),
    Case(1, 8, 8, 7, 2, (5, 5), 1, 2, 1, 2, 4, mask=True, bias=False, scale=5),
]


def _torchvision_deform_conv2d(x, offset, weight, bias, mask=None, **kw):
    """torchvision's op with run_with_grads' calling convention (skips without torchvision)."""
    return pytest.importorskip("torchvision.ops").deform_conv2d(x, offset, weight, bias, mask=mask, **kw)


@pytest.mark.parametrize("case", TV_CASES, ids=str)
def test_matches_torchvision_forward_and_gradients(case):
    seed = 100 + TV_CASES.index(case)
    tensors = make_inputs(case, seed)
    out, grads = run_with_grads(deform_conv2d, tensors, seed, **conv_kwargs(case))
    tv_out, tv_grads = run_with_grads(_torchvision_deform_conv2d, tensors, seed, **conv_kwargs(case))
    torch.testing.assert_close(out, tv_out, rtol=1e-9, atol=1e-9)
    assert_grads_close(grads, tv_grads, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------
# Integer sample points, the lines y = -1 and x = -1 included. Every DCN layer starts there
# (zero-initialised offsets, padding 1), and gradcheck cannot see them: the offset gradient
# is one-sided, that of the formula with fractions in [0, 1) (docs/semantics.md), as the
# reference's and torchvision's. On the CPU each loop variant and both conv paths.
# ---------------------------------------------------------------------------------------
INTEGER_CASES = [
    Case(2, 4, 6, 7, 3, (3, 3), 1, 1, 1, 1, 1, mask=True, bias=True),
    Case(1, 4, 7, 6, 2, (3, 3), 2, 1, 2, 2, 2, mask=False, bias=False),
    Case(1, 2, 5, 5, 2, (5, 5), 1, 3, 1, 1, 2, mask=True, bias=False),
]


def _cpu_variants(device):
    """(name, forcing context) of each CPU loop variant x conv path; one plain run elsewhere."""
    if device != "cpu":
        return [(device, contextlib.nullcontext)]
    return [(f"{isa}/{path}", lambda isa=isa, path=path: _forced(isa, path))
            for isa in available_cpu_isas() for path in ("fused", "unfused")]


@contextlib.contextmanager
def _forced(isa, path):
    with forced_cpu_isa(isa), test_hooks(conv_path=path):
        yield


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("offset_mode", ["zero", "integer"])
@pytest.mark.parametrize("case", INTEGER_CASES, ids=str)
def test_offset_gradient_at_integer_points_and_on_the_border_line(case, offset_mode, device):
    seed = 500 + INTEGER_CASES.index(case)
    tensors = make_inputs(case, seed, offset_mode=offset_mode)
    _, offset, *_ = tensors
    y, x = _sample_points(case, offset)
    assert ((y == -1) & (x > -1) & (x < case.w)).any() and ((x == -1) & (y > -1) & (y < case.h)).any()
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, tensors, seed, **conv_kwargs(case))
    # A second opinion.
    tv_out, tv_grads = run_with_grads(_torchvision_deform_conv2d, tensors, seed, **conv_kwargs(case))
    torch.testing.assert_close(tv_out, ref_out, rtol=1e-10, atol=1e-10)
    assert_grads_close(tv_grads, ref_grads, rtol=1e-10, atol=1e-10)
    on_device = [None if t is None else t.to(device) for t in tensors]
    for where, forced in _cpu_variants(device):
        with forced():
            out, grads = run_with_grads(deform_conv2d, on_device, seed, **conv_kwargs(case))
        torch.testing.assert_close(out.cpu(), ref_out, rtol=1e-10, atol=1e-10, msg=lambda m: f"{where}: {m}")
        assert_grads_close([None if g is None else g.cpu() for g in grads], ref_grads, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------
# Zero offsets + unit mask = regular convolution.
# ---------------------------------------------------------------------------------------
CONV_CASES = [
    Case(2, 4, 7, 7, 6, (3, 3), 1, 0, 1, 1, 1),
    Case(2, 4, 7, 7, 6, (3, 3), 1, 1, 1, 2, 2),
    Case(1, 4, 8, 9, 4, (3, 3), 2, 1, 1, 1, 4),
    Case(3, 6, 9, 8, 6, (3, 3), (2, 1), (2, 0), 2, 3, 1),
    Case(2, 4, 9, 9, 2, (5, 3), 1, 2, (2, 1), 2, 2),
    Case(2, 2, 5, 6, 4, (1, 1), 2, 0, 1, 1, 1, bias=False),
    Case(1, 8, 6, 6, 8, (2, 2), 1, 1, 1, 4, 2),
]


@pytest.mark.parametrize("use_mask", [False, True], ids=["v1", "unit_mask"])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_zero_offset_equals_conv2d(case, use_mask):
    x, offset, weight, bias, _ = make_inputs(case, 200 + CONV_CASES.index(case), offset_mode="zero")
    ho, wo = case.out_hw
    mask = torch.ones(case.n, case.og * case.k[0] * case.k[1], ho, wo, dtype=torch.float64) if use_mask else None
    out, grads = run_with_grads(deform_conv2d, (x, offset, weight, bias, mask), 1, **conv_kwargs(case))

    def conv(x, offset, weight, bias, mask=None, **kw):
        return F.conv2d(x, weight, bias, groups=case.groups, **kw)

    ref, ref_grads = run_with_grads(conv, (x, None, weight, bias, None), 1, **conv_kwargs(case))
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    # Offset/mask grads are not defined by conv2d (offset grads are one-sided at integer
    # sample points); compare input, weight and bias grads.
    for name in ("input", "weight", "bias"):
        i = GRAD_NAMES.index(name)
        if ref_grads[i] is not None:
            torch.testing.assert_close(grads[i], ref_grads[i], rtol=1e-10, atol=1e-10, msg=lambda m, n=name: f"{n}: {m}")


# ---------------------------------------------------------------------------------------
# gradcheck (float64) at non-integer sample points.
# ---------------------------------------------------------------------------------------
GRADCHECK_CASES = [
    Case(1, 2, 4, 4, 2, (2, 2), 1, 0, 1, 1, 1, mask=True, bias=True),
    Case(2, 4, 5, 4, 2, (3, 2), (2, 1), 1, (1, 2), 2, 2, mask=True, bias=True),
    Case(1, 2, 5, 5, 2, (3, 3), 1, 1, 2, 1, 2, mask=False, bias=True),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=str)
def test_gradcheck(case, device):
    tensors = make_inputs(case, 300 + GRADCHECK_CASES.index(case), device=device, offset_mode="fractional")
    x, offset, weight, bias, mask = [None if t is None else t.requires_grad_() for t in tensors]
    kw = conv_kwargs(case)

    def fn(x, offset, weight, bias, mask):
        return deform_conv2d(x, offset, weight, bias, mask=mask, **kw)

    assert torch.autograd.gradcheck(fn, (x, offset, weight, bias, mask), eps=1e-6, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Half precision.
# ---------------------------------------------------------------------------------------
HALF_CASE = Case(2, 16, 9, 9, 8, (3, 3), 1, 0, 1, 2, 2, mask=True, bias=True, scale=3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_matches_float32_on_rounded_inputs(dtype, device):
    """float16/bfloat16 are computed with float32 accumulation and returned in the input dtype.

    Reference: the float32 op on the same (half-rounded, then upcast) inputs, so the only
    expected difference is the final rounding of the result to ``dtype``. Documented
    tolerance: |half - float32| <= eps(dtype) * |float32| + 1e-5, i.e. within one unit in
    the last place of the half result (correct rounding gives at most half an ulp; one
    ulp leaves room for float32 summation-order noise). eps = 2**-10 for float16,
    2**-7 for bfloat16. The same tolerance holds for the gradients (float32 accumulation,
    result rounded once).

    bfloat16 forward on the CPU: the sampled values are rounded to bfloat16 before the
    product (bf16 storage of the columns, float32 accumulation, as in a bfloat16
    convolution: docs/semantics.md), so the output error also scales with the output's
    magnitude as a whole: atol = eps * max|float32 output| there.
    """
    tensors = [t.to(dtype) for t in make_inputs(HALF_CASE, 400, dtype=torch.float32, device=device)]
    kw = conv_kwargs(HALF_CASE)
    out, grads = run_with_grads(deform_conv2d, tensors, 401, **kw)
    assert out.dtype == dtype
    for name, t, gr in zip(GRAD_NAMES, tensors, grads):
        assert gr.dtype == dtype and gr.shape == t.shape, name
    # grad_output in run_with_grads is drawn in float64 and cast to out's dtype; make the
    # float32 run use the same half-rounded grad_output.
    g = torch.Generator().manual_seed(401)
    grad_out = torch.randn(out.shape, generator=g, dtype=torch.float64).to(dtype).float()
    leaves = [t.float().requires_grad_() for t in tensors]
    out32 = deform_conv2d(*leaves[:4], mask=leaves[4], **kw)
    grads32 = torch.autograd.grad(out32, leaves, grad_out)
    tol = dict(rtol=torch.finfo(dtype).eps, atol=1e-5)
    out_tol = tol
    if dtype == torch.bfloat16 and device == "cpu":
        out_tol = dict(rtol=torch.finfo(dtype).eps, atol=torch.finfo(dtype).eps * out32.abs().max().item())
    torch.testing.assert_close(out.float(), out32.detach(), **out_tol)
    assert_grads_close([gr.float() for gr in grads], list(grads32), **tol)


# ---------------------------------------------------------------------------------------
# torch.library / torch.compile / torch.export integration.
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "use_mask,use_bias", [(True, True), (False, False), (True, False), (False, True)], ids=["mask-bias", "v1", "mask", "bias"]
)
def test_opcheck(use_mask, use_bias):
    case = Case(2, 4, 5, 5, 6, (3, 3), 1, 1, 1, 2, 2, mask=use_mask, bias=use_bias)
    x, offset, weight, bias, mask = [
        None if t is None else t.requires_grad_() for t in make_inputs(case, 500)
    ]
    args = (x, offset, weight, bias, mask, 1, 1, 1, 1, 1, 1, case.groups, case.og)
    torch.library.opcheck(OP, args)


def test_opcheck_backward_op():
    case = Case(2, 4, 5, 5, 6, (3, 3), 2, 1, 1, 2, 2, mask=True, bias=True)
    x, offset, weight, _, mask = make_inputs(case, 501)
    ho, wo = case.out_hw
    grad_out = torch.randn(2, 6, ho, wo, dtype=torch.float64)
    args = (grad_out, x, offset, weight, mask, 2, 2, 1, 1, 1, 1, case.groups, case.og)
    torch.library.opcheck(torch.ops.dcn_det._deform_conv2d_backward.default, args)


def _compile_fn(x, offset, weight, bias, mask):
    # Surrounding ops so the custom op sits inside a real graph.
    return torch.relu(deform_conv2d(x * 1.5, offset, weight, bias, stride=1, padding=1, dilation=1, mask=mask.sigmoid())) * 2


def test_torch_compile_fullgraph_matches_eager():
    """backend="aot_eager": traces through the fake kernels and the backward op. The default
    inductor backend also works but takes ~25 s to compile on 2 cores, too slow here."""
    torch._dynamo.reset()
    case = Case(2, 4, 6, 6, 6, (3, 3), 1, 1, 1, 2, 2, mask=True, bias=True)
    tensors = make_inputs(case, 600, dtype=torch.float32)
    compiled = torch.compile(_compile_fn, fullgraph=True, backend="aot_eager")
    out_c, grads_c = run_with_grads(compiled, tensors, 601)
    out_e, grads_e = run_with_grads(_compile_fn, tensors, 601)
    torch.testing.assert_close(out_c, out_e, rtol=1e-6, atol=1e-6)
    assert_grads_close(grads_c, grads_e, rtol=1e-6, atol=1e-6)


def test_torch_compile_dynamic_shapes_matches_eager():
    torch._dynamo.reset()
    compiled = torch.compile(_compile_fn, fullgraph=True, dynamic=True, backend="aot_eager")
    for n, h, w in [(2, 6, 6), (3, 7, 5), (1, 5, 8)]:
        case = Case(n, 4, h, w, 6, (3, 3), 1, 1, 1, 2, 2, mask=True, bias=True)
        tensors = make_inputs(case, 610 + n, dtype=torch.float32)
        out_c = compiled(*tensors)
        out_e = _compile_fn(*tensors)
        torch.testing.assert_close(out_c, out_e, rtol=1e-6, atol=1e-6)


class _OffsetDeformConv(torch.nn.Module):
    """DCNv2 block: offset and mask predicted by a conv from the input."""

    def __init__(self, c: int = 4, co: int = 6, k: int = 3):
        super().__init__()
        g = torch.Generator().manual_seed(700)
        self.offset_conv = torch.nn.Conv2d(c, 3 * k * k, k, padding=k // 2)
        with torch.no_grad():
            self.offset_conv.weight.copy_(torch.randn(self.offset_conv.weight.shape, generator=g))
        self.weight = torch.nn.Parameter(torch.randn(co, c, k, k, generator=g) * 0.2)
        self.bias = torch.nn.Parameter(torch.randn(co, generator=g))
        self.k = k

    def forward(self, x):
        om = self.offset_conv(x)
        taps = self.k * self.k
        offset, mask = om[:, : 2 * taps], om[:, 2 * taps :].sigmoid()
        return deform_conv2d(x, offset, self.weight, self.bias, padding=self.k // 2, mask=mask)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_torch_export_matches_eager(dynamic):
    mod = _OffsetDeformConv().eval()
    g = torch.Generator().manual_seed(701)
    x = torch.randn(2, 4, 6, 7, generator=g)
    dynamic_shapes = None
    if dynamic:
        dynamic_shapes = {"x": {0: torch.export.Dim("batch"), 2: torch.export.Dim("h", min=3), 3: torch.export.Dim("w", min=3)}}
    ep = torch.export.export(mod, (x,), dynamic_shapes=dynamic_shapes)
    targets = [node.target for node in ep.graph.nodes if node.op == "call_function"]
    assert OP in targets
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), mod(x), rtol=1e-6, atol=1e-6)
        if dynamic:
            x2 = torch.randn(3, 4, 5, 9, generator=g)
            torch.testing.assert_close(ep.module()(x2), mod(x2), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Argument errors.
# ---------------------------------------------------------------------------------------
def _valid(dtype=torch.float32):
    """input [2, 4, 6, 6], 3x3 weight with groups 2, 1 offset group -> output 4x4."""
    g = torch.Generator().manual_seed(800)
    return dict(
        input=torch.randn(2, 4, 6, 6, generator=g, dtype=dtype),
        offset=torch.randn(2, 18, 4, 4, generator=g, dtype=dtype),
        weight=torch.randn(6, 2, 3, 3, generator=g, dtype=dtype),
        bias=torch.randn(6, generator=g, dtype=dtype),
        mask=torch.rand(2, 9, 4, 4, generator=g, dtype=dtype),
    )


def _call(**overrides):
    kw = _valid()
    kw.update(overrides)
    return deform_conv2d(kw.pop("input"), kw.pop("offset"), kw.pop("weight"), **kw)


# (id, overrides, regex the message must match: the argument name and the expected shape)
VALUE_ERRORS = [
    ("offset-channels-not-multiple", dict(offset=torch.randn(2, 17, 4, 4)), r"offset.*18"),
    ("offset-channels-zero", dict(offset=torch.randn(2, 0, 4, 4)), r"offset.*18"),
    ("offset-groups-do-not-divide-channels", dict(offset=torch.randn(2, 54, 4, 4)), r"offset"),
    ("offset-spatial", dict(offset=torch.randn(2, 18, 5, 4)), r"offset.*\[2, 18, 4, 4\]"),
    ("offset-batch", dict(offset=torch.randn(3, 18, 4, 4)), r"offset.*\[2, 18, 4, 4\]"),
    ("offset-rank", dict(offset=torch.randn(18, 4, 4)), r"offset.*4-D"),
    ("mask-channels", dict(mask=torch.rand(2, 8, 4, 4)), r"mask.*\[2, 9, 4, 4\]"),
    ("mask-channels-doubled", dict(mask=torch.rand(2, 18, 4, 4)), r"mask.*\[2, 9, 4, 4\]"),
    ("mask-spatial", dict(mask=torch.rand(2, 9, 4, 3)), r"mask.*\[2, 9, 4, 4\]"),
    ("mask-batch", dict(mask=torch.rand(1, 9, 4, 4)), r"mask.*\[2, 9, 4, 4\]"),
    ("mask-rank", dict(mask=torch.rand(9, 4, 4)), r"mask.*4-D"),
    ("weight-groups-do-not-divide-channels", dict(weight=torch.randn(6, 3, 3, 3)), r"weight\.shape\[1\]"),
    ("weight-out-channels-not-divisible-by-groups", dict(weight=torch.randn(5, 2, 3, 3)), r"weight\.shape\[0\]"),
    ("weight-rank", dict(weight=torch.randn(6, 2, 3)), r"weight.*4-D"),
    ("bias-length", dict(bias=torch.randn(5)), r"bias.*\[6\]"),
    ("bias-rank", dict(bias=torch.randn(6, 1)), r"bias.*1-D"),
    ("input-rank", dict(input=torch.randn(4, 6, 6)), r"input.*4-D"),
    ("input-too-small", dict(input=torch.randn(2, 4, 2, 2), offset=torch.randn(2, 18, 1, 1), mask=None), r"input"),
    ("offset-dtype", dict(offset=torch.randn(2, 18, 4, 4, dtype=torch.float64)), r"offset.*dtype"),
    ("weight-dtype", dict(weight=torch.randn(6, 2, 3, 3, dtype=torch.float64)), r"weight.*dtype"),
    ("mask-dtype", dict(mask=torch.rand(2, 9, 4, 4, dtype=torch.float64)), r"mask.*dtype"),
    ("bias-dtype", dict(bias=torch.randn(6, dtype=torch.float64)), r"bias.*dtype"),
    ("stride-zero", dict(stride=0), r"stride"),
    ("dilation-zero", dict(dilation=0), r"dilation"),
    ("padding-negative", dict(padding=-1), r"padding"),
]


@pytest.mark.parametrize("overrides,match", [pytest.param(o, m, id=i) for i, o, m in VALUE_ERRORS])
def test_invalid_arguments_raise_value_error_naming_the_argument(overrides, match):
    with pytest.raises(ValueError, match=match):
        _call(**overrides)


def test_integer_dtype_raises_value_error():
    kw = {k: v.long() for k, v in _valid().items()}
    with pytest.raises(ValueError, match=r"input.*float"):
        deform_conv2d(kw["input"], kw["offset"], kw["weight"])


@pytest.mark.parametrize(
    "overrides,match",
    [
        pytest.param(dict(input=[[1.0]]), r"input", id="input-list"),
        pytest.param(dict(offset=None), r"offset", id="offset-none"),
        pytest.param(dict(weight=3), r"weight", id="weight-int"),
        pytest.param(dict(mask=1.0), r"mask", id="mask-float"),
        pytest.param(dict(bias=[0.0] * 6), r"bias", id="bias-list"),
        pytest.param(dict(stride=(1, 1, 1)), r"stride", id="stride-triple"),
    ],
)
def test_non_tensor_arguments_raise_type_error(overrides, match):
    with pytest.raises(TypeError, match=match):
        _call(**overrides)


def test_raw_op_validates_inconsistent_group_arguments():
    """The dispatcher op is public too: explicit groups/offset_groups that do not match the
    shapes must raise, not read out of bounds."""
    v = _valid()
    x, offset, weight = v["input"], v["offset"], v["weight"]
    with pytest.raises(ValueError, match=r"offset"):
        OP(x, offset, weight, None, None, 1, 1, 0, 0, 1, 1, 2, 2)  # offset_groups=2 needs 36 channels
    with pytest.raises(ValueError, match=r"weight"):
        OP(x, offset, weight, None, None, 1, 1, 0, 0, 1, 1, 1, 1)  # groups=1 needs weight.shape[1]=4


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA_OK, reason=str(CUDA_SKIP))
@pytest.mark.parametrize("name", ["offset", "weight", "bias", "mask"])
def test_mixed_devices_raise_value_error(name):
    kw = {k: v.cuda() for k, v in _valid().items()}
    kw[name] = kw[name].cpu()
    with pytest.raises(ValueError, match=name):
        deform_conv2d(kw.pop("input"), kw.pop("offset"), kw.pop("weight"), **kw)


# ---------------------------------------------------------------------------------------
# Shapes and layouts.
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_mask", [False, True], ids=["v1", "v2"])
def test_empty_batch_returns_empty_output_and_backward_works(use_mask, device):
    case = Case(0, 4, 6, 5, 6, (3, 3), 2, 1, 1, 2, 2, mask=use_mask, bias=True)
    tensors = make_inputs(case, 900, dtype=torch.float32, device=device)
    out, grads = run_with_grads(deform_conv2d, tensors, 0, **conv_kwargs(case))
    assert out.shape == (0, 6, *case.out_hw) and out.dtype == torch.float32
    for name, t, gr in zip(GRAD_NAMES, tensors, grads):
        if t is None:
            continue
        assert gr is not None and gr.shape == t.shape, name
    assert torch.all(grads[GRAD_NAMES.index("weight")] == 0)
    assert torch.all(grads[GRAD_NAMES.index("bias")] == 0)


def _layout(t: Optional[torch.Tensor], kind: str) -> Optional[torch.Tensor]:
    """The same values as ``t`` in a non-default memory layout."""
    if t is None:
        return None
    if kind == "channels_last":
        return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
    if kind == "transposed":  # stored as [..., W, H] and viewed back
        return t.transpose(-1, -2).contiguous().transpose(-1, -2) if t.dim() == 4 else t
    if kind == "sliced":  # every other element of a twice-as-wide buffer along dim 1 / last dim
        if t.dim() == 4:
            buf = torch.zeros(t.shape[0], 2 * t.shape[1], t.shape[2], 2 * t.shape[3] + 1, dtype=t.dtype, device=t.device)
            buf[:, ::2, :, 1::2] = t
            return buf[:, ::2, :, 1::2]
        buf = torch.zeros(2 * t.shape[0], dtype=t.dtype, device=t.device)
        buf[::2] = t
        return buf[::2]
    if kind == "expanded_batch":  # batch dim with stride 0 (callers pass batch-uniform data)
        return t[:1].expand_as(t)
    raise ValueError(kind)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["channels_last", "transposed", "sliced", "expanded_batch"])
def test_non_contiguous_inputs_match_contiguous(kind, device):
    case = Case(2, 4, 6, 7, 4, (3, 3), 1, 1, 1, 2, 2, mask=True, bias=True)
    tensors = list(make_inputs(case, 950, device=device))
    batched = (0, 1, 4)  # input, offset, mask
    if kind == "expanded_batch":  # the contiguous twin holds the same batch-uniform values
        for i in batched:
            tensors[i] = tensors[i][:1].expand_as(tensors[i]).contiguous()
    laid_out = [_layout(t, kind) if (kind != "expanded_batch" or i in batched) else t for i, t in enumerate(tensors)]
    for t, u in zip(tensors, laid_out):
        assert torch.equal(t, u)
    if kind == "channels_last":
        assert laid_out[0].is_contiguous(memory_format=torch.channels_last) and not laid_out[0].is_contiguous()
    else:
        assert not laid_out[0].is_contiguous() and not laid_out[1].is_contiguous() and not laid_out[4].is_contiguous()
    out, grads = run_with_grads(deform_conv2d, tensors, 1, **conv_kwargs(case))
    out_nc, grads_nc = run_with_grads(deform_conv2d, laid_out, 1, **conv_kwargs(case))
    torch.testing.assert_close(out_nc, out, rtol=1e-12, atol=1e-12)
    assert_grads_close(grads_nc, grads, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------
# Determinism.
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_backward_is_bitwise_deterministic_and_correct_under_deterministic_algorithms(device, deterministic_algorithms):
    """Equal bits run to run (float32, where summation order shows), and the reference's
    values (float64). The CPU kernel is deterministic by construction; the device
    algorithm (device_path, cuda) switches to its atomic-free col2im, one owner per plane."""
    # Large enough that the work is split over threads; offsets straddle pixels so
    # several outputs scatter into the same input element.
    case = Case(3, 8, 12, 12, 8, (3, 3), 1, 1, 1, 2, 4, mask=True, bias=True, scale=2)
    tensors = make_inputs(case, 1000, dtype=torch.float32, device=device)
    out1, grads1 = run_with_grads(deform_conv2d, tensors, 1, **conv_kwargs(case))
    out2, grads2 = run_with_grads(deform_conv2d, tensors, 1, **conv_kwargs(case))
    assert torch.equal(out1, out2)
    for name, a, b in zip(GRAD_NAMES, grads1, grads2):
        assert torch.equal(a, b), name
    tensors = make_inputs(case, 1000, dtype=torch.float64, device=device)
    out, grads = run_with_grads(deform_conv2d, tensors, 1, **conv_kwargs(case))
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, [t.cpu() for t in tensors], 1, **conv_kwargs(case))
    torch.testing.assert_close(out.cpu(), ref_out, rtol=1e-9, atol=1e-9)
    assert_grads_close([g.cpu() for g in grads], ref_grads, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("images_per_chunk", [1, 2, 3, 5])
def test_chunked_batches_match_reference(images_per_chunk, device):
    """A batch is split into chunks of at most the column budget (lowered here through
    the test hook): full chunks, a smaller last chunk, and a single chunk agree with
    the reference."""
    case = Case(5, 4, 6, 7, 4, (3, 3), 1, 1, 1, 2, 2, mask=True, bias=True, scale=3)
    per_image = case.c * 9 * case.out_hw[0] * case.out_hw[1]
    tensors = make_inputs(case, 77, device=device)
    with test_hooks(column_budget=images_per_chunk * per_image):
        out, grads = run_with_grads(deform_conv2d, tensors, 2, **conv_kwargs(case))
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, [t.cpu() for t in tensors], 2, **conv_kwargs(case))
    torch.testing.assert_close(out.cpu(), ref_out, rtol=1e-9, atol=1e-9)
    assert_grads_close([g.cpu() for g in grads], ref_grads, rtol=1e-9, atol=1e-9)
