"""Random calls of both operators (forward and backward), checked against the references.

Each call draws shapes and parameters (1-pixel maps, kernels larger than the input, huge
strides / dilations / paddings, every groups / offset-groups split, empty batches, zero
RoIs), a dtype (float64, float32, float16, bfloat16), a layout (contiguous, channels-last,
sliced) and values: normal ones and extremes (offsets of +-1e30, +-inf, NaN, sample points
exactly on the borders -1, H, half-integers; RoIs with x2 < x1, far outside the image,
half-integer corners), and sometimes an invalid argument. The outcome must be one of:

* a ValueError / TypeError / RuntimeError whose message names the offending argument,
  for a call that is invalid (an invalid call that returns is a failure too);
* a result that agrees with the reference implementation (deform_conv2d_reference.py,
  deform_psroi_pool_reference.py), to a tolerance set by the dtype.

Defined behaviour for non-finite values (docs/semantics.md):
* deform_conv2d: a NaN or infinite offset makes its sampling point "outside": the sample is
  0 and its offset and mask gradients are 0. The expected values are the reference's with
  each non-finite offset replaced by 1e9 (a point outside the map).
* deform_psroi_pool: non-finite RoIs are rejected (ValueError naming rois). A NaN or
  infinite offset (trans_std > 0) puts the samples of the bins that use it outside the map,
  so they are skipped; the reference gets 1e9 in its place, which skips them too.

Where the result is discontinuous (a sample point on an integer coordinate, where the
offset gradient is one-sided, or on a skip border of deform_psroi_pool) the rounding of
the dtype can fall on either side: such calls compare what is continuous there and say so.

Run many: ``python -m tests.ops.fuzz_cli --count 100000 --seed 7``; CI runs
tests/ops/test_fuzz.py (a fixed seed).
"""
import math
import random
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor

from dcn_det.ops import deform_conv2d, deform_psroi_pool

from .deform_conv2d_reference import deform_conv2d_ref, out_size
from .deform_psroi_pool_reference import deform_psroi_pool_reference, sample_positions

DTYPES = [torch.float64, torch.float64, torch.float32, torch.float32, torch.float16, torch.bfloat16]
# Relative tolerance (of the largest reference magnitude) per dtype: float64 and float32 at
# their accumulation noise, half types at a few units of their last place.
RTOL = {torch.float64: 1e-9, torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}
EXTREMES = [1e30, -1e30, math.inf, -math.inf, math.nan]
NONFINITE_STAND_IN = 1e9  # the reference's stand-in for a non-finite offset: outside the map


@dataclass
class Outcome:
    op: str
    kind: str  # "match", "rejected", or "FAIL"
    detail: str = ""
    compared: List[str] = field(default_factory=list)


class Invalid(Exception):
    """The call was made invalid on purpose; carries the argument name the error must give."""


def _close(got: Tensor, want: Tensor, dtype: torch.dtype, what: str) -> Optional[str]:
    if got.shape != want.shape:
        return f"{what}: shape {tuple(got.shape)} != reference {tuple(want.shape)}"
    if want.numel() == 0:
        return None
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    if not torch.isfinite(got).all():
        return f"{what}: non-finite values where the reference has {int(torch.isfinite(want).sum())} finite"
    scale = max(want.abs().max().item(), 1.0)
    diff = (got - want).abs().max().item()
    if diff > RTOL[dtype] * scale:
        return f"{what}: max |diff| {diff:.3g} > {RTOL[dtype]:.1g} * {scale:.3g}"
    return None


def _layout(t: Optional[Tensor], kind: str) -> Optional[Tensor]:
    if t is None or t.dim() != 4 or kind == "contiguous":
        return t
    if kind == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    # "sliced": every other element of a twice-as-wide buffer along the last axis
    wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    wide[..., ::2] = t
    return wide[..., ::2]


def _distance_to_kink(p: Tensor, borders=(), exact_integers_ok=False) -> float:
    """Smallest distance of the finite entries of p to an integer or to one of ``borders``;
    with ``exact_integers_ok``, entries that are exactly integers do not count (their
    one-sided gradient is defined, and no rounding can move them off the integer)."""
    p = p[torch.isfinite(p)]
    if exact_integers_ok:
        p = p[p != p.round()]
    if p.numel() == 0:
        return math.inf
    d = (p - p.round()).abs().min().item()
    for b in borders:
        d = min(d, (p - b).abs().min().item())
    return d


# --------------------------------------------------------------------------- deform_conv2d


def _distance_to_jump(p: Tensor, jumps) -> float:
    """Smallest distance of the finite entries of p to one of ``jumps``, points exactly on
    one excluded (base + integer offset is exact in every dtype)."""
    p = p[torch.isfinite(p)]
    d = math.inf
    for j in jumps:
        dist = (p - j).abs()
        dist = dist[dist > 0]
        if dist.numel():
            d = min(d, dist.min().item())
    return d


def _conv_call(rng: random.Random, gen: torch.Generator):
    groups, og = rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2, 4])
    c = groups * og // math.gcd(groups, og) * rng.randint(1, 2)
    n = rng.choice([0, 1, 1, 2, 3])
    h, w = rng.choice([1, 2, 3, 5, 8]), rng.choice([1, 2, 4, 7])
    kh, kw = rng.choice([1, 2, 3, 3, 5]), rng.choice([1, 2, 3, 3, 4])
    stride = (rng.choice([1, 1, 2, 3, 100]), rng.choice([1, 1, 2, 100]))
    dilation = (rng.choice([1, 1, 1, 2, 20]), rng.choice([1, 1, 3]))
    padding = (rng.choice([0, 1, 2, 2, 50]), rng.choice([0, 1, 2, 3]))
    co = groups * rng.randint(1, 2)
    use_mask, use_bias = rng.random() < 0.6, rng.random() < 0.5
    dtype = rng.choice(DTYPES)
    ho = out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = out_size(w, kw, stride[1], padding[1], dilation[1])
    invalid = None
    if ho <= 0 or wo <= 0:
        invalid = "input"  # the dilated kernel does not fit even with the padding
        ho, wo = max(ho, 1), max(wo, 1)
    # Points on every border and on half-integers, plus normal draws and extremes.
    f64 = dict(dtype=torch.float64)
    x = torch.randn(n, c, h, w, generator=gen, **f64)
    weight = torch.randn(co, c // groups, kh, kw, generator=gen, **f64) / math.sqrt(c // groups * kh * kw)
    offset = torch.randn(n, 2 * og * kh * kw, ho, wo, generator=gen, **f64) * rng.choice([0.5, 2.0, 6.0])
    mode = rng.choice(["normal", "normal", "borders", "extremes"])
    if mode == "borders" and offset.numel():
        # sample y at exactly -1, -0.5, 0, H-1, H-0.5, H (and x likewise): offset = target - base
        flat = offset.view(-1)
        picks = torch.randint(0, flat.numel(), (max(1, flat.numel() // 3),), generator=gen)
        flat[picks] = flat[picks].round() + torch.tensor([0.0, 0.5])[torch.randint(0, 2, picks.shape, generator=gen)]
    elif mode == "extremes" and offset.numel():
        flat = offset.view(-1)
        for _ in range(rng.randint(1, 4)):
            flat[rng.randrange(flat.numel())] = rng.choice(EXTREMES)
    mask = torch.rand(n, og * kh * kw, ho, wo, generator=gen, **f64) if use_mask else None
    bias = torch.randn(co, generator=gen, **f64) if use_bias else None
    if invalid is None and rng.random() < 0.15:  # an invalid argument on purpose
        which = rng.choice(["offset", "mask", "weight", "bias", "stride"])
        if which == "offset":
            offset = offset[:, :-1] if offset.shape[1] > 1 else torch.cat([offset, offset], 1)
        elif which == "mask":
            mask = torch.rand(n, og * kh * kw + 1, ho, wo, generator=gen, **f64)
        elif which == "weight":  # weight.shape[1] that divides no channel count: groups = 0
            weight = torch.randn(co, c + 1, kh, kw, generator=gen, **f64)
        elif which == "bias":
            bias = torch.randn(co + 1, generator=gen, **f64)
        else:
            stride = (0, stride[1])
        invalid = which
    border = rng.choice(["dcnv2", "dcnv2", "dcnv1"])
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, border=border)
    desc = (f"deform_conv2d n{n} c{c} {h}x{w} co{co} k{kh}x{kw} s{stride} p{padding} d{dilation} g{groups} "
            f"og{og} mask={use_mask} bias={use_bias} {dtype} offsets={mode} border={border}")
    return (x, offset, weight, bias, mask), kwargs, dtype, invalid, desc, (kh, kw)


def _conv_sample_points(offset: Tensor, kwargs, k) -> Tensor:
    """Sampling coordinates (y and x stacked) of every tap, float64."""
    (sh, sw), (ph, pw), (dh, dw) = kwargs["stride"], kwargs["padding"], kwargs["dilation"]
    n, ch, ho, wo = offset.shape
    kh, kw = k
    off = offset.reshape(n, ch // (2 * kh * kw), kh, kw, 2, ho, wo).double()
    by = (torch.arange(ho) * sh - ph)[:, None] + (torch.arange(kh) * dh)[:, None, None]  # [kh, ho, 1]
    bx = (torch.arange(wo) * sw - pw)[None, :] + (torch.arange(kw) * dw)[:, None, None]  # [kw, 1, wo]
    y = off[:, :, :, :, 0] + by[None, None, :, None, :, :]
    x = off[:, :, :, :, 1] + bx[None, None, None, :, :, :]
    return torch.stack([y, x])


def check_conv(rng: random.Random, gen: torch.Generator) -> Outcome:
    tensors, kwargs, dtype, invalid, desc, k = _conv_call(rng, gen)
    layout = rng.choice(["contiguous", "contiguous", "channels_last", "sliced"])
    args = [None if t is None else _layout(t.to(dtype), layout).requires_grad_() for t in tensors]
    x, offset, weight, bias, mask = args
    try:
        out = deform_conv2d(x, offset, weight, bias, mask=mask, **kwargs)
        grad_out = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(dtype)
        present = [t for t in args if t is not None]
        grads = torch.autograd.grad(out, present, grad_out)
    except (ValueError, TypeError, RuntimeError) as e:
        import re

        if invalid is not None and re.search(invalid, str(e)):
            return Outcome("deform_conv2d", "rejected", f"{desc}: {type(e).__name__} naming {invalid}")
        return Outcome("deform_conv2d", "FAIL", f"{desc}: unexpected {type(e).__name__}: {e}")
    if invalid is not None:
        return Outcome("deform_conv2d", "FAIL", f"{desc}: invalid {invalid} accepted")

    # Reference in float64 on the dtype-rounded inputs, non-finite offsets replaced.
    ref_in = [None if t is None else t.detach().double().contiguous() for t in args]
    finite = torch.isfinite(ref_in[1])
    ref_in[1] = torch.where(finite, ref_in[1], torch.full_like(ref_in[1], NONFINITE_STAND_IN))
    leaves = [None if t is None else t.requires_grad_() for t in ref_in]
    rx, roff, rw, rb, rm = leaves
    if rx.shape[0] == 0:  # empty batch: the reference cannot reshape; the answer is plain
        ref = out.detach().double().new_zeros(out.shape)
        ref_grads = [torch.zeros_like(t) for t in leaves if t is not None]
    else:
        ref = deform_conv2d_ref(rx, roff, rw, rb, mask=rm, **kwargs)
        ref_grads = torch.autograd.grad(ref, [t for t in leaves if t is not None], grad_out.double())

    compared = ["output"]
    problem = _close(out, ref, dtype, "output")
    names = [nm for nm, t in zip(("input", "offset", "weight", "bias", "mask"), args) if t is not None]
    # The offset gradient is one-sided at integer sample coordinates: compare it only where
    # no point is within the dtype's rounding of one (and everything in float64 otherwise).
    # Points exactly on an integer ("borders" mode: y = -1, 0, H-1, H) are compared: base
    # + integer offset is exact in float32 too, and the one-sided slope there is specified
    # (docs/semantics.md; y = -1 once got a zero slope).
    points = _conv_sample_points(ref_in[1], kwargs, k)
    if kwargs["border"] == "dcnv1" and dtype != torch.float64:
        # The DCNv1 value jumps to 0 at y = 0, H and x = 0, W; our float32 sum base + offset
        # and the reference's float64 one can fall on either side of a jump.
        h, w = x.shape[2], x.shape[3]
        jump = _distance_to_jump(points[0], (0, h)), _distance_to_jump(points[1], (0, w))
        if min(jump) <= (1e-4 if dtype == torch.float32 else 1e-2):
            return Outcome("deform_conv2d", "match", desc + " (a sample within rounding of a DCNv1 jump: only run, not compared)", [])
    kink = _distance_to_kink(points, exact_integers_ok=True)
    offset_ok = kink > (1e-9 if dtype == torch.float64 else 1e-4)
    half = dtype in (torch.float16, torch.bfloat16)
    for name, got, want in zip(names, grads, ref_grads or []):
        if problem or (name == "offset" and not offset_ok) or (half and name in ("offset", "mask")):
            continue
        compared.append(f"grad_{name}")
        problem = _close(got, want, dtype, f"grad_{name}")
    if problem:
        return Outcome("deform_conv2d", "FAIL", f"{desc} layout={layout}: {problem}")
    return Outcome("deform_conv2d", "match", desc, compared)


# ----------------------------------------------------------------------- deform_psroi_pool


def _psroi_call(rng: random.Random, gen: torch.Generator):
    n = rng.choice([1, 1, 2, 3])
    h, w = rng.choice([1, 2, 5, 9]), rng.choice([1, 3, 6, 11])
    group = rng.choice([1, 1, 2, 3])
    pooled = rng.choice([1, 2, 3, 4, 7])
    classes = rng.choice([1, 1, 2])
    output_dim = classes * rng.randint(1, 3)
    part = rng.choice([0, 0, 1, max(1, pooled // 2), pooled])
    spp = rng.choice([1, 2, 4])
    trans_std = rng.choice([0.0, 0.1, 0.1, 0.5])
    no_trans = rng.random() < 0.25
    scale = rng.choice([1.0, 0.5, 0.25, 1 / 16])
    dtype = rng.choice(DTYPES)
    num_rois = rng.choice([0, 1, 3, 6])
    f64 = dict(dtype=torch.float64)
    x = torch.randn(n, output_dim * group * group, h, w, generator=gen, **f64)
    img_w, img_h = w / scale, h / scale
    x1 = (torch.rand(num_rois, generator=gen, **f64) * 1.4 - 0.2) * img_w
    y1 = (torch.rand(num_rois, generator=gen, **f64) * 1.4 - 0.2) * img_h
    x2 = x1 + (torch.rand(num_rois, generator=gen, **f64) - 0.1) * img_w  # sometimes x2 < x1
    y2 = y1 + (torch.rand(num_rois, generator=gen, **f64) - 0.1) * img_h
    rois = torch.stack([torch.randint(0, n, (num_rois,), generator=gen).double(), x1, y1, x2, y2], 1)
    mode = rng.choice(["normal", "normal", "half", "far", "extremes"])
    if mode == "half" and num_rois:
        rois[:, 1:] = rois[:, 1:].floor() + 0.5  # C round vs round-half-even
    elif mode == "far" and num_rois:
        rois[rng.randrange(num_rois), 1:] += rng.choice([1e4, -1e4])
    part_size = part or pooled
    offset = None if (no_trans and rng.random() < 0.5) else torch.randn(num_rois, 2 * classes, part_size, part_size, generator=gen, **f64)
    if mode == "extremes" and offset is not None and offset.numel() and trans_std > 0 and not no_trans:
        flat = offset.view(-1)
        for _ in range(rng.randint(1, 3)):
            flat[rng.randrange(flat.numel())] = rng.choice(EXTREMES)
    invalid = None
    if rng.random() < 0.15:
        which = rng.choice(["rois", "rois_nan", "offset", "input", "batch"])
        if which == "rois":
            rois = rois[:, :4]
        elif which == "rois_nan" and num_rois:
            rois[0, 2] = math.nan
            which = "rois"
        elif which == "batch" and num_rois:
            rois[0, 0] = n + rng.choice([0, 3]) if rng.random() < 0.7 else 0.5
            which = "rois"
        elif which == "offset" and not no_trans:
            offset = torch.randn(num_rois, 2 * classes, part_size + 1, part_size, generator=gen, **f64)
        elif which == "input":
            x = torch.randn(n, output_dim * group * group + 1, h, w, generator=gen, **f64)
        else:
            which = None
        invalid = which
    args = (scale, output_dim, group, pooled, part, spp, trans_std, no_trans)
    desc = (f"deform_psroi_pool n{n} {h}x{w} out{output_dim} g{group} pooled{pooled} part{part} spp{spp} "
            f"classes{classes} std{trans_std} no_trans={no_trans} R{num_rois} {dtype} scale{scale} rois={mode}")
    return x, rois, offset, args, dtype, invalid, desc


def check_psroi(rng: random.Random, gen: torch.Generator) -> Outcome:
    x, rois, offset, args, dtype, invalid, desc = _psroi_call(rng, gen)
    layout = rng.choice(["contiguous", "contiguous", "channels_last", "sliced"])
    xi = _layout(x.to(dtype), layout).requires_grad_()
    oi = None if offset is None else offset.to(dtype).requires_grad_()
    ri = rois.to(dtype)
    try:
        out = deform_psroi_pool(xi, ri, oi, *args)
        grad_out = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(dtype)
        leaves = [xi] + ([oi] if oi is not None else [])
        grads = torch.autograd.grad(out, leaves, grad_out)
    except (ValueError, TypeError, RuntimeError) as e:
        if invalid is not None and invalid in str(e):
            return Outcome("deform_psroi_pool", "rejected", f"{desc}: {type(e).__name__} naming {invalid}")
        return Outcome("deform_psroi_pool", "FAIL", f"{desc}: unexpected {type(e).__name__}: {e}")
    if invalid is not None:
        return Outcome("deform_psroi_pool", "FAIL", f"{desc}: invalid {invalid} accepted")

    scale, output_dim, group, pooled, part, spp, trans_std, no_trans = args
    rx = xi.detach().double().requires_grad_()
    rr = ri.detach().double()
    ro = None
    if oi is not None:
        o = oi.detach().double()
        ro = torch.where(torch.isfinite(o), o, torch.full_like(o, NONFINITE_STAND_IN)).requires_grad_()
    leaves = [rx] + ([ro] if ro is not None else [])
    if rr.shape[0] == 0:  # zero RoIs: an empty output and zero gradients
        ref = out.detach().double().new_zeros(out.shape)
        ref_grads = [torch.zeros_like(t) for t in leaves]
    else:
        ref = deform_psroi_pool_reference(rx, rr, ro, *args)
        ref_grads = torch.autograd.grad(ref, leaves, grad_out.double(), allow_unused=True)

    # The result is discontinuous at the skip borders (-0.5, size - 0.5) and the offset
    # gradient at integer positions (where the bilinear slope changes). In float64 the
    # kernels compute positions in the reference's order, bit for bit, so everything is
    # compared; in lower precision a position within rounding of a border can fall on
    # either side, so such a call is only run, and near integers the offset gradient is
    # not compared.
    border, integer = math.inf, math.inf
    if rr.shape[0]:
        pw_, ph_ = sample_positions(rr, None if ro is None else ro.detach(), scale, output_dim, pooled, part, spp,
                                    trans_std, no_trans)
        h, w = x.shape[2:]
        for p, size in ((pw_.detach(), w), (ph_.detach(), h)):
            p = p[torch.isfinite(p)]
            if p.numel():
                border = min(border, (p + 0.5).abs().min().item(), (p - size + 0.5).abs().min().item())
                integer = min(integer, (p - p.round()).abs().min().item())
    exact = dtype == torch.float64
    if not exact and border <= 1e-2:
        return Outcome("deform_psroi_pool", "match", desc + " (a sample on a skip border: only run, not compared)", [])
    compared = ["output"]
    problem = _close(out, ref, dtype, "output")
    for name, got, want in zip(("input", "offset"), grads, ref_grads or []):
        if problem or (name == "offset" and not exact and (integer <= 1e-2 or dtype != torch.float32)):
            continue
        want = torch.zeros_like(got, dtype=torch.float64) if want is None else want
        compared.append(f"grad_{name}")
        problem = _close(got, want, dtype, f"grad_{name}")
    if problem:
        return Outcome("deform_psroi_pool", "FAIL", f"{desc} layout={layout}: {problem}")
    return Outcome("deform_psroi_pool", "match", desc, compared)


CHECKS: Dict[str, Callable[[random.Random, torch.Generator], Outcome]] = {
    "deform_conv2d": check_conv,
    "deform_psroi_pool": check_psroi,
}


def fuzz(count: int, seed: int, ops=tuple(CHECKS)) -> List[Outcome]:
    """``count`` random calls of each op in ``ops``; call i of op j uses seed (seed, j, i)."""
    outcomes = []
    for j, op in enumerate(ops):
        for i in range(count):
            rng = random.Random(f"{seed}-{op}-{i}")
            gen = torch.Generator().manual_seed(rng.randrange(2**63))
            outcomes.append(CHECKS[op](rng, gen))
    return outcomes
