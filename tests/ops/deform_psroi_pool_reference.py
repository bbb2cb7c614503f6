"""Plain-PyTorch reference for ``deform_psroi_pool`` (deformable position-sensitive RoI pooling).

Written from docs/semantics.md section 2, whose semantics are those of MXNet's ``DeformablePSROIPooling``
(Dai et al.). Everything is computed in float64 with differentiable torch ops on ``input``
and ``offset``, so autograd gives the reference gradients; ``rois`` only select and place
samples and receive no gradient.

Per RoI r, output channel c and bin (ph, pw):

    x1' = round(x1) * scale - 0.5            round = C round (halves away from zero)
    x2' = (round(x2) + 1) * scale - 0.5      (same for y)
    roi_w = max(x2' - x1', 0.1);   bin_w = roi_w / pooled;   sub_w = bin_w / sample_per_part
    part_w = floor(pw * part_size / pooled);  class = c // channels_each_class
    dx = offset[r, 2*class,     part_h, part_w] * trans_std   (0 when no_trans)
    dy = offset[r, 2*class + 1, part_h, part_w] * trans_std
    wstart = pw * bin_w + x1' + dx * roi_w                       (same for h with dy)
    sample (ih, iw) at (hstart + ih*sub_h, wstart + iw*sub_w)    ih, iw in [0, sample_per_part)
    skip the sample if w < -0.5 or w > W - 0.5 or h < -0.5 or h > H - 0.5,
    else clamp to [0, W-1] x [0, H-1] and bilinearly interpolate
    input[batch, (c*group + gh)*group + gw] with gw = clamp(floor(pw*group/pooled), 0, group-1)
    output = mean over the kept samples, 0 when none is kept.

The original computes part_w as floor(pw / pooled * part_size) in floating point; that equals
the integer floor(pw * part_size / pooled) used here for every pooled_size below 22.

Bilinear interpolation uses the corners floor(p) and ceil(p), as the original does: at an
integer position both corners are the same pixel, so the derivative with respect to the
position (hence the offset gradient) is exactly 0 there, as in the original backward kernel.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor


def c_round(x: Tensor) -> Tensor:
    """C/C++ ``round``: halves go away from zero (``torch.round`` sends them to even)."""
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def roi_geometry(rois: Tensor, spatial_scale: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(start_w, start_h, width, height) of every RoI on the feature map, float64 [R] each."""
    r = rois.detach().to(torch.float64)
    start_w = c_round(r[:, 1]) * spatial_scale - 0.5
    start_h = c_round(r[:, 2]) * spatial_scale - 0.5
    end_w = (c_round(r[:, 3]) + 1.0) * spatial_scale - 0.5
    end_h = (c_round(r[:, 4]) + 1.0) * spatial_scale - 0.5
    width = torch.clamp(end_w - start_w, min=0.1)
    height = torch.clamp(end_h - start_h, min=0.1)
    return start_w, start_h, width, height


def _num_classes(offset: Optional[Tensor], output_dim: int, no_trans: bool) -> Tuple[int, int]:
    """(num_classes, channels_each_class) as the original derives them from the offset."""
    if no_trans or offset is None:
        return 1, output_dim
    num_classes = offset.shape[1] // 2
    return num_classes, output_dim // num_classes


def sample_positions(
    rois: Tensor,
    offset: Optional[Tensor],
    spatial_scale: float,
    output_dim: int,
    pooled_size: int,
    part_size: int = 0,
    sample_per_part: int = 4,
    trans_std: float = 0.0,
    no_trans: bool = False,
) -> Tuple[Tensor, Tensor]:
    """Sample positions (w, h) before skipping/clamping, float64 [R, C, P, P, S, S].

    Index order: roi, output channel, ph, pw, ih, iw. Differentiable w.r.t. ``offset``.
    The arithmetic follows the original's order (bin start, then the offset shift, then
    the sub-bin step) so that samples landing exactly on a skip boundary agree bit for bit.
    """
    P, S = pooled_size, sample_per_part
    part = part_size if part_size > 0 else pooled_size
    R = rois.shape[0]
    dev = rois.device
    start_w, start_h, roi_w, roi_h = roi_geometry(rois, spatial_scale)
    bin_w, bin_h = roi_w / P, roi_h / P
    sub_w, sub_h = bin_w / S, bin_h / S

    p = torch.arange(P, device=dev)
    p64 = p.to(torch.float64)
    # [R, P]: bin start without offset (pw * bin + roi start)
    base_w = p64[None, :] * bin_w[:, None] + start_w[:, None]
    base_h = p64[None, :] * bin_h[:, None] + start_h[:, None]
    # broadcast to [R, C, ph, pw]
    wstart = base_w[:, None, None, :].expand(R, output_dim, P, P)
    hstart = base_h[:, None, :, None].expand(R, output_dim, P, P)

    if not no_trans:
        num_classes, per_class = _num_classes(offset, output_dim, no_trans)
        part_idx = torch.div(p * part, P, rounding_mode="floor")  # floor(p / P * part)
        cls = torch.arange(output_dim, device=dev) // per_class
        off = offset.to(torch.float64)
        # [R, C, part, part] -> [R, C, P(ph), P(pw)]
        tx = off[:, 2 * cls][:, :, part_idx][:, :, :, part_idx] * trans_std
        ty = off[:, 2 * cls + 1][:, :, part_idx][:, :, :, part_idx] * trans_std
        wstart = wstart + tx * roi_w[:, None, None, None]
        hstart = hstart + ty * roi_h[:, None, None, None]

    i64 = torch.arange(S, device=dev, dtype=torch.float64)
    w = wstart[..., None, None] + i64[None, :] * sub_w[:, None, None, None, None, None]
    h = hstart[..., None, None] + i64[:, None] * sub_h[:, None, None, None, None, None]
    return w, h


def deform_psroi_pool_reference(
    input: Tensor,
    rois: Tensor,
    offset: Optional[Tensor],
    spatial_scale: float,
    output_dim: int,
    group_size: int,
    pooled_size: int,
    part_size: int = 0,
    sample_per_part: int = 4,
    trans_std: float = 0.0,
    no_trans: bool = False,
) -> Tensor:
    """Reference forward; returns float64 ``[R, output_dim, pooled_size, pooled_size]``.

    Same arguments as ``dcn_det.ops.deform_psroi_pool``. No argument validation beyond
    what indexing does: feed it valid cases only.
    """
    N, channels, H, W = input.shape
    G, P, S = group_size, pooled_size, sample_per_part
    R = rois.shape[0]
    assert channels == output_dim * G * G, "input channels must be output_dim * group_size^2"
    x = input.to(torch.float64)
    if R == 0:
        out = x.new_zeros((0, output_dim, P, P)) + 0.0 * x.sum()  # keeps the autograd graph
        if offset is not None and not no_trans:
            out = out + 0.0 * offset.to(torch.float64).sum()
        return out

    w, h = sample_positions(
        rois, offset, spatial_scale, output_dim, P, part_size, S, trans_std, no_trans
    )
    wd, hd = w.detach(), h.detach()
    keep = (wd >= -0.5) & (wd <= W - 0.5) & (hd >= -0.5) & (hd <= H - 0.5)

    wc = torch.clamp(w, 0.0, W - 1.0)
    hc = torch.clamp(h, 0.0, H - 1.0)
    x0 = torch.floor(wc.detach())
    y0 = torch.floor(hc.detach())
    x1 = torch.ceil(wc.detach()).long()
    y1 = torch.ceil(hc.detach()).long()
    lx = wc - x0  # differentiable w.r.t. the offset
    ly = hc - y0
    x0, y0 = x0.long(), y0.long()

    dev = input.device
    p = torch.arange(P, device=dev)
    g = torch.clamp(torch.div(p * G, P, rounding_mode="floor"), 0, G - 1)
    c = torch.arange(output_dim, device=dev)
    in_ch = (c[:, None, None] * G + g[None, :, None]) * G + g[None, None, :]  # [C, ph, pw]

    b = rois.detach()[:, 0].long().to(dev)
    bi = b.view(R, 1, 1, 1, 1, 1)
    ci = in_ch.view(1, output_dim, P, P, 1, 1)
    v00 = x[bi, ci, y0, x0]
    v01 = x[bi, ci, y1, x0]
    v10 = x[bi, ci, y0, x1]
    v11 = x[bi, ci, y1, x1]
    val = (1 - lx) * (1 - ly) * v00 + (1 - lx) * ly * v01 + lx * (1 - ly) * v10 + lx * ly * v11
    val = torch.where(keep, val, torch.zeros_like(val))

    total = val.sum(dim=(-2, -1))
    count = keep.sum(dim=(-2, -1)).to(torch.float64)
    return torch.where(count > 0, total / count.clamp(min=1.0), torch.zeros_like(total))


# ---------------------------------------------------------------------------------------
# Hand-computed cases, shared by the reference self-tests and the operator tests.
# Each value is derived on paper in the comment next to it; nothing here was produced by
# running an implementation. "ramp" maps are exactly linear, so bilinear interpolation
# returns the linear function itself and a mean over samples is the function at the mean.
# ---------------------------------------------------------------------------------------
def ramp(height: int, width: int, ay: float = 0.0, ax: float = 1.0, b: float = 0.0) -> Tensor:
    """``[1, 1, H, W]`` float64 map with value ``ay*y + ax*x + b`` at pixel (y, x)."""
    y = torch.arange(height, dtype=torch.float64)[:, None]
    x = torch.arange(width, dtype=torch.float64)[None, :]
    return (ay * y + ax * x + b)[None, None].contiguous()


@dataclass
class HandCase:
    name: str
    make_input: Callable[[], Tensor]
    rois: List[List[float]]
    make_offset: Optional[Callable[[], Tensor]]
    kwargs: Dict
    expected: List  # nested list, shape [R, output_dim, pooled, pooled]
    # gradients of output.sum(), when derived by hand
    expected_input_grad: Optional[Callable[[], Tensor]] = None
    expected_offset_grad: Optional[List] = None
    extra: Dict = field(default_factory=dict)

    def tensors(self, device="cpu", dtype=torch.float64):
        inp = self.make_input().to(device=device, dtype=dtype).contiguous()
        rois = torch.tensor(self.rois, dtype=dtype, device=device)
        off = None
        if self.make_offset is not None:
            off = self.make_offset().to(device=device, dtype=dtype)
        return inp, rois, off

    def expected_tensor(self, device="cpu", dtype=torch.float64) -> Tensor:
        return torch.tensor(self.expected, dtype=dtype, device=device)


def _kw(spatial_scale=1.0, output_dim=1, group_size=1, pooled_size=1, part_size=0,
        sample_per_part=1, trans_std=0.0, no_trans=True) -> Dict:
    return dict(spatial_scale=spatial_scale, output_dim=output_dim, group_size=group_size,
                pooled_size=pooled_size, part_size=part_size, sample_per_part=sample_per_part,
                trans_std=trans_std, no_trans=no_trans)


def _offset(values, shape) -> Callable[[], Tensor]:
    return lambda: torch.tensor(values, dtype=torch.float64).reshape(shape)


def _g_input_grad() -> Tensor:
    # samples at .75 and 1.75 on each axis; per-axis bilinear weight totals
    # pixel0: .25 (from .75), pixel1: .75 + .25, pixel2: .75 (from 1.75), pixel3: 0.
    a = torch.tensor([0.25, 1.0, 0.75, 0.0], dtype=torch.float64)
    return (torch.outer(a, a) / 4.0)[None, None]  # 4 samples, mean -> / 4


def _part_offset() -> Tensor:
    off = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    off[0, 0] = torch.tensor([[1.0, 0.25], [1.0, 0.25]])  # x shift per (part_h, part_w)
    return off


def _two_constant_images() -> Tensor:
    return torch.tensor([1.0, 2.0], dtype=torch.float64).view(2, 1, 1, 1).expand(2, 1, 3, 3)


def _class_offset() -> Tensor:
    off = torch.zeros(1, 4, 1, 1, dtype=torch.float64)
    off[0, 0] = 0.5  # class 0 dx; class 0 dy, class 1 dx/dy stay 0
    return off


HAND_CASES = [
    # I = x on 4x4. roi (0,0,3,3): x1' = 0 - .5 = -.5, x2' = (3+1) - .5 = 3.5, width 4.
    # pooled 1, spp 1: one sample at (-.5, -.5): on the skip boundary, so kept (the test is
    # strict `<`), clamped to (0, 0) -> I = 0.
    HandCase("sample_on_skip_boundary_is_kept", lambda: ramp(4, 4), [[0, 0, 0, 3, 3]], None,
             _kw(sample_per_part=1), [[[[0.0]]]]),
    # Same RoI, spp 2: sub-bin 2, samples w, h in {-.5, 1.5}; w clamps to {0, 1.5}:
    # mean over 4 samples of x = (0 + 1.5 + 0 + 1.5) / 4 = .75.
    HandCase("two_by_two_samples_clamped", lambda: ramp(4, 4), [[0, 0, 0, 3, 3]], None,
             _kw(sample_per_part=2), [[[[0.75]]]]),
    # I = 10y + x. roi (1,1,2,2): start .5, end 2.5, width 2, spp 2 -> sub 1, samples
    # {.5, 1.5} per axis: mean x = 1, mean y = 1 -> 10*1 + 1 = 11 (no +.5 on sample index).
    HandCase("linear_ramp_inside", lambda: ramp(4, 4, 10, 1), [[0, 1, 1, 2, 2]], None,
             _kw(sample_per_part=2), [[[[11.0]]]]),
    # roi (.5,.5,1.5,1.5): C round -> (1,1,2,2) -> same as above = 11.
    # (torch.round -> (0,0,2,2): start -.5, width 3, sub 1.5, samples {-.5, 1} -> clamp
    # {0, 1}: mean x = .5, mean y = .5 -> 5.5.)
    HandCase("c_round_positive_halves", lambda: ramp(4, 4, 10, 1), [[0, 0.5, 0.5, 1.5, 1.5]],
             None, _kw(sample_per_part=2), [[[[11.0]]]]),
    # I = x + 1 on a 1x4 map. roi (-2.5, 0, 3, 0): C round x1 = -3 -> x1' = -3.5,
    # x2' = 4 - .5 = 3.5, width 7, sub 3.5: w in {-3.5 (skipped), 0}; y1' = -.5, y2' = .5,
    # height 1, sub .5: h in {-.5, 0} (both kept, clamp to 0). Kept: 2 samples at x = 0 -> 1.
    # (torch.round(-2.5) = -2 -> x1' = -2.5, width 6, sub 3: w in {-2.5, .5} -> 1.5.)
    HandCase("c_round_negative_half", lambda: ramp(1, 4, 0, 1, 1), [[0, -2.5, 0, 3, 0]], None,
             _kw(sample_per_part=2), [[[[1.0]]]]),
    # roi (10,10,12,12) on 4x4: start 9.5 > W - .5 = 3.5, every sample skipped: count 0 -> 0.
    HandCase("roi_outside_map_gives_zero", lambda: ramp(4, 4, 0, 1, 1), [[0, 10, 10, 12, 12]],
             None, _kw(sample_per_part=2), [[[[0.0]]]]),
    # roi (3,3,1,1), x2 < x1: x1' = 2.5, x2' = 1.5 -> width max(-1, .1) = .1, sub .05:
    # w in {2.5, 2.55} (h the same): mean x = 2.525.
    HandCase("degenerate_roi_width_floor", lambda: ramp(4, 4), [[0, 3, 3, 1, 1]], None,
             _kw(sample_per_part=2), [[[[2.525]]]]),
    # spatial_scale .5, roi (2,2,5,5): x1' = 1 - .5 = .5, x2' = 6*.5 - .5 = 2.5, width 2,
    # sub 1: w in {.5, 1.5} -> mean x = 1.
    HandCase("spatial_scale_half", lambda: ramp(4, 4), [[0, 2, 2, 5, 5]], None,
             _kw(spatial_scale=0.5, sample_per_part=2), [[[[1.0]]]]),
    # group 2, pooled 2, output_dim 1: channel k is the constant k. Bin (ph, pw) reads
    # channel (0*2 + gh)*2 + gw with gh = ph, gw = pw -> [[0, 1], [2, 3]].
    HandCase("position_sensitive_channels",
             lambda: torch.arange(4, dtype=torch.float64).view(1, 4, 1, 1).expand(1, 4, 4, 4),
             [[0, 0, 0, 3, 3]], None, _kw(group_size=2, pooled_size=2, sample_per_part=2),
             [[[[0.0, 1.0], [2.0, 3.0]]]]),
    # I = x on 6x6, roi (0,0,5,5): start -.5, width 6, pooled 3 -> bin 2, spp 1.
    # part_size 2: part_w = floor(pw*2/3) = 0, 0, 1. trans_std 1/6 so the shift is
    # offset * (1/6) * 6 = offset. x offsets per part_w: 1, .25 (y offsets 0):
    # pw0: -.5 + 0 + 1 = .5;  pw1: -.5 + 2 + 1 = 2.5;  pw2: -.5 + 4 + .25 = 3.75.
    # h = -.5 + 2*ph (-.5 is kept and clamped): rows are all [.5, 2.5, 3.75].
    HandCase("part_index_mapping", lambda: ramp(6, 6), [[0, 0, 0, 5, 5]], _part_offset,
             _kw(pooled_size=3, part_size=2, sample_per_part=1, trans_std=1.0 / 6.0,
                 no_trans=False),
             [[[[0.5, 2.5, 3.75]] * 3]],
             # Every w sample is interior and non-integer, so d out[ph, pw] / d dx of its
             # part = trans_std * width * slope = 1. part_h = floor(ph*2/3) = 0, 0, 1 and
             # part_w = 0, 0, 1, so part (0,0) serves 2x2 bins -> 4, (0,1) and (1,0) serve
             # 2 bins each -> 2, (1,1) one bin -> 1. dy gradients are 0 (no slope in y).
             expected_offset_grad=[[[[4.0, 2.0], [2.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]]),
    # I = 10y + x, roi (1,1,2,2): start .5, width 2, sub 1. Offset (dx, dy) = (.5, .5),
    # trans_std .25: shift .5*.25*2 = .25 on both axes -> samples {.75, 1.75}:
    # value = mean x + 10 mean y = 1.25 + 12.5 = 13.75.
    # d/d dx = trans_std*width*1 = .5; d/d dy = .25*2*10 = 5 (all 4 samples kept).
    HandCase("offset_shift_and_gradients", lambda: ramp(4, 4, 10, 1), [[0, 1, 1, 2, 2]],
             _offset([0.5, 0.5], (1, 2, 1, 1)),
             _kw(sample_per_part=2, trans_std=0.25, no_trans=False), [[[[13.75]]]],
             expected_input_grad=_g_input_grad,
             expected_offset_grad=[[[[0.5]], [[5.0]]]]),
    # I = 10y + x, roi (-1,1,1,2): x1' = -1.5, x2' = 1.5, width 3, sub 1.5; height 2, sub 1.
    # dx = .5, trans_std .25 -> shift .375: w in {-1.125 (skipped), .375}; h in {.5, 1.5}.
    # 2 samples kept: value = .375 + 10*1 = 10.375.
    # d/d dx = .25*3*1 = .75 and d/d dy = .25*2*10 = 5: normalised by the 2 kept samples
    # (normalising by all 4 would give .375 and 2.5).
    HandCase("count_normalises_offset_gradient", lambda: ramp(4, 4, 10, 1), [[0, -1, 1, 1, 2]],
             _offset([0.5, 0.0], (1, 2, 1, 1)),
             _kw(sample_per_part=2, trans_std=0.25, no_trans=False), [[[[10.375]]]],
             expected_offset_grad=[[[[0.75]], [[5.0]]]]),
    # As "offset_shift_and_gradients" with (dx, dy) = (1, 1): shift .5 -> samples at the
    # integer positions {1, 2}: value = 1.5 + 15 = 16.5. At an integer position the original
    # interpolates between floor(p) and ceil(p) = the same pixel, so the offset gradient is 0.
    HandCase("integer_sample_offset_gradient_is_zero", lambda: ramp(4, 4, 10, 1),
             [[0, 1, 1, 2, 2]], _offset([1.0, 1.0], (1, 2, 1, 1)),
             _kw(sample_per_part=2, trans_std=0.25, no_trans=False), [[[[16.5]]]],
             expected_offset_grad=[[[[0.0]], [[0.0]]]]),
    # output_dim 2, both channels I = x, roi (1,1,2,2), samples {.5, 1.5}. Class-specific
    # offset (4 channels, 2 classes, 1 channel each): class 0 dx = .5 -> shift .25 ->
    # mean x 1.25; class 1 has no shift -> 1.
    HandCase("class_specific_offsets", lambda: ramp(4, 4).expand(1, 2, 4, 4),
             [[0, 1, 1, 2, 2]], _class_offset,
             _kw(output_dim=2, sample_per_part=2, trans_std=0.25, no_trans=False),
             [[[[1.25]], [[1.0]]]]),
    # Class-agnostic offset (2 channels): dx = .5 moves both output channels -> 1.25 each.
    HandCase("class_agnostic_offset", lambda: ramp(4, 4).expand(1, 2, 4, 4),
             [[0, 1, 1, 2, 2]], _offset([0.5, 0.0], (1, 2, 1, 1)),
             _kw(output_dim=2, sample_per_part=2, trans_std=0.25, no_trans=False),
             [[[[1.25]], [[1.25]]]]),
    # Two images, constant 1 and 2; RoI 0 reads image 1, RoI 1 reads image 0 -> [2, 1].
    HandCase("batch_index_selects_image",
             _two_constant_images,
             [[1, 0, 0, 2, 2], [0, 0, 0, 2, 2]], None, _kw(sample_per_part=2),
             [[[[2.0]]], [[[1.0]]]]),
]


# ---------------------------------------------------------------------------------------
# A case for finite-difference gradient checks. The output is piecewise smooth in the
# offset: it has kinks where a sample crosses an integer position or a clamp limit (0 and
# size-1) and jumps where it crosses a skip limit (-.5 and size-.5). This case keeps every
# sample at least `GRADCHECK_MARGIN` from all of them (checked by `kink_margin`).
# ---------------------------------------------------------------------------------------
GRADCHECK_MARGIN = 0.005
# (spatial_scale, output_dim, group_size, pooled_size, part_size, sample_per_part, trans_std,
#  no_trans)
GRADCHECK_ARGS = (0.45, 2, 2, 3, 2, 2, 0.1, False)


def gradcheck_case(device="cpu"):
    """float64 (input [2, 8, 8, 8], rois [3, 5], class-specific offset [3, 4, 2, 2])."""
    gen = torch.Generator().manual_seed(131)
    offset = 0.3 * torch.randn(3, 4, 2, 2, generator=gen, dtype=torch.float64)
    inp = torch.randn(2, 8, 8, 8, generator=gen, dtype=torch.float64)
    rois = torch.tensor([[0, 4.0, 5.0, 12.0, 11.0], [1, 5.0, 3.0, 13.0, 13.0],
                         [0, 3.0, 4.0, 9.0, 12.0]], dtype=torch.float64)
    return inp.to(device), rois.to(device), offset.to(device)


def kink_margin(rois, offset, height, width, spatial_scale, output_dim, group_size, pooled_size,
                part_size, sample_per_part, trans_std, no_trans) -> float:
    """Smallest distance of any sample to an integer, to [0, size-1]'s limits or outside them."""
    w, h = sample_positions(rois.cpu(), None if offset is None else offset.detach().cpu(),
                            spatial_scale, output_dim, pooled_size, part_size, sample_per_part,
                            trans_std, no_trans)
    margin = float("inf")
    for p, size in ((w.detach(), width), (h.detach(), height)):
        frac = p - p.floor()
        margin = min(margin, p.min().item(), size - 1 - p.max().item(),
                     frac.min().item(), (1 - frac).min().item())
    return margin
