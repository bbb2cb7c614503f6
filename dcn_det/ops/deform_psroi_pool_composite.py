"""``deform_psroi_pool`` written with plain tensor ops, for export.

The compiled operator is unknown to ONNX runtimes. This function computes exactly what it
computes (docs/semantics.md section 2) with ops every exporter translates to standard ONNX
(arithmetic, comparisons, ``Where``, ``Gather`` on the flattened input, ``ReduceSum``), no
data-dependent Python control flow, so an exported graph runs anywhere.
``dcn_det.ops.deform_psroi_pool`` switches to it while ``torch.onnx.export`` runs
(``torch.onnx.is_in_onnx_export()``); it is not meant for training (the compiled op is
faster and has the gradient kernels).

Layout of the intermediate tensors: ``[R, K, E, P, P, S, S]`` = RoI, offset class,
channel of the class, bin row, bin column, sample row, sample column (K = 1 and E =
output_dim without offsets or with a class-agnostic one). Sample positions depend on
(R, K, P, P, S, S) only, so they are computed once per class.
"""
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor


def _c_round(x: Tensor) -> Tensor:
    """C ``round`` (halves away from zero), exact: ``floor(|x|) + (frac >= 0.5)`` with the
    sign put back. (ONNX Round and torch.round send halves to even; ``floor(|x| + 0.5)``
    is wrong for 0.49999997 in float32, where the sum rounds up to 1.)"""
    magnitude = x.abs()
    whole = magnitude.floor()
    up = (magnitude - whole >= 0.5).to(x.dtype)
    return torch.where(x < 0, -(whole + up), whole + up)


def _roi_geometry(rois: Tensor, scale: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(start_w, start_h, roi_w, roi_h), each [R], in the kernel's order of operations."""
    start_w = _c_round(rois[:, 1]) * scale - 0.5
    start_h = _c_round(rois[:, 2]) * scale - 0.5
    end_w = (_c_round(rois[:, 3]) + 1.0) * scale - 0.5
    end_h = (_c_round(rois[:, 4]) + 1.0) * scale - 0.5
    roi_w = torch.clamp(end_w - start_w, min=0.1)  # degenerate and inverted RoIs: 0.1 wide
    roi_h = torch.clamp(end_h - start_h, min=0.1)
    return start_w, start_h, roi_w, roi_h


def _scaled_index(size: int, numerator: int, denominator: int, device) -> Tensor:
    """``floor(i * numerator / denominator)`` for i in [0, size), exactly, in int64. (arange
    rather than torch.tensor: the exported constants then need no in-place copy, which
    torch.export's decompositions refuse.)"""
    return torch.div(torch.arange(size, device=device) * numerator, denominator, rounding_mode="floor")


class BinStarts(NamedTuple):
    """Where each bin's samples start, in feature-map coordinates (pixel centres at integers).

    ``wstart``/``hstart`` broadcast to [R, K, P(ph), P(pw)] (K offset classes; K = 1 and
    size-1 dimensions without an offset); sample (ih, iw) of a bin lies at
    ``(wstart + iw * bin_w / S, hstart + ih * bin_h / S)``; ``bin_w``/``bin_h`` are [R]."""

    wstart: Tensor
    hstart: Tensor
    bin_w: Tensor
    bin_h: Tensor


def deform_psroi_bin_starts(rois: Tensor, offset: Optional[Tensor], spatial_scale: float, pooled_size: int,
                            part_size: int = 0, trans_std: float = 0.0) -> BinStarts:
    """The bin geometry of :func:`dcn_det.ops.deform_psroi_pool` (the kernel's
    ``deform_psroi_bin``, in its order of operations): the RoI's rounded corners, the bin
    grid, each bin moved by ``offset[:, 2k:2k+2, part_h, part_w] * trans_std * RoI size``.
    The export path pools at these points and the pictures of :mod:`dcn_det.visualization`
    draw them. ``rois`` [R, 5], ``offset`` [R, 2K, part, part] or None (regular bins)."""
    P = pooled_size
    part = part_size or pooled_size
    start_w, start_h, roi_w, roi_h = _roi_geometry(rois, spatial_scale)
    bin_w, bin_h = roi_w / P, roi_h / P
    p = torch.arange(P, device=rois.device).to(rois.dtype)
    # Bin starts [R, 1, P(ph), P(pw)] before the offset: pw * bin_w + start_w.
    wstart = (p[None, :] * bin_w[:, None] + start_w[:, None])[:, None, None, :]
    hstart = (p[None, :] * bin_h[:, None] + start_h[:, None])[:, None, :, None]
    if offset is not None:
        parts = _scaled_index(P, part, P, rois.device)  # floor(p * part / P)
        # Channels 2k (dx) and 2k+1 (dy) by slicing: no reshape that involves R, which the
        # TorchScript exporter writes with a -1 that cannot be resolved when R is 0.
        off = offset.to(rois.dtype).index_select(2, parts).index_select(3, parts) * trans_std  # [R, 2K, P, P]
        wstart = wstart + off[:, 0::2] * roi_w[:, None, None, None]
        hstart = hstart + off[:, 1::2] * roi_h[:, None, None, None]
    return BinStarts(wstart, hstart, bin_w, bin_h)


def deform_psroi_pool_composite(
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
    """Same arguments and result as :func:`dcn_det.ops.deform_psroi_pool` (forward only).

    A RoI whose batch index is not an image of ``input`` pools to 0 here (the compiled op
    raises a ValueError instead; a graph cannot raise).
    """
    N, channels, H, W = input.shape
    P, S, G = pooled_size, sample_per_part, group_size
    part = part_size or pooled_size
    if channels != output_dim * G * G:
        raise ValueError(f"deform_psroi_pool: input must have output_dim * group_size^2 = {output_dim * G * G} "
                         f"channels, got shape {tuple(input.shape)}")
    use_offset = not no_trans
    if use_offset and offset is None:
        raise ValueError("deform_psroi_pool: offset is required unless no_trans=True")
    K = offset.shape[1] // 2 if use_offset else 1  # offset classes
    if output_dim % K != 0:
        raise ValueError(f"deform_psroi_pool: output_dim ({output_dim}) must be a multiple of the offset's "
                         f"{K} classes (offset shape {tuple(offset.shape)})")
    E = output_dim // K  # channels per class
    device = input.device
    # float16/bfloat16 are computed in float32, as the compiled kernels do.
    compute = torch.float64 if input.dtype == torch.float64 else torch.float32
    x = input.to(compute)
    # One dummy RoI in front, dropped at the end: exported graphs then never meet an empty
    # RoI batch (an FPN level with no box is common), whose zero-sized dimensions break
    # shape computations in onnxruntime (Reshape's 0 = "copy", buffers sized at export).
    r = torch.cat([rois.new_zeros((1, rois.shape[1])).to(compute), rois.to(compute)])
    if use_offset:
        offset = torch.cat([offset.new_zeros((1,) + tuple(offset.shape[1:])), offset])

    wstart, hstart, bin_w, bin_h = deform_psroi_bin_starts(r, offset if use_offset else None, spatial_scale, P,
                                                           part, trans_std)
    sub_w, sub_h = bin_w / S, bin_h / S
    # Sample points [R, K, P, P, S(ih), S(iw)], no half-step offset.
    i = torch.arange(S, device=device).to(compute)
    w = wstart[..., None, None] + i[None, :] * sub_w[:, None, None, None, None, None]
    h = hstart[..., None, None] + i[:, None] * sub_h[:, None, None, None, None, None]

    # Skip points outside [-0.5, W-0.5] x [-0.5, H-0.5] (NaN fails the test too); clamp the rest.
    keep = (w >= -0.5) & (w <= W - 0.5) & (h >= -0.5) & (h <= H - 0.5)
    batch = r[:, 0]
    valid_batch = (batch >= 0) & (batch < N)
    keep = keep & valid_batch[:, None, None, None, None, None]
    zero = torch.zeros((), dtype=compute, device=device)
    w = torch.where(keep, w, zero).clamp(0.0, W - 1.0)  # skipped points read pixel 0, weight 0
    h = torch.where(keep, h, zero).clamp(0.0, H - 1.0)
    x0, y0 = w.floor(), h.floor()
    lx, ly = w - x0, h - y0
    x0, y0 = x0.to(torch.int64), y0.to(torch.int64)
    x1, y1 = w.ceil().to(torch.int64), h.ceil().to(torch.int64)  # ceil, as the original

    # Flat index of pixel (b, channel, y, x) = ((b * C + channel) * H + y) * W + x, split into
    # a per-channel part [R, K, E, P, P, 1, 1] and a per-sample part [R, K, 1, P, P, S, S].
    cell = _scaled_index(P, G, P, device).clamp(0, G - 1)  # gh (gw) of each bin row (column)
    channel = torch.arange(output_dim, device=device)
    position = (channel[:, None, None] * G + cell[None, :, None]) * G + cell[None, None, :]  # [C, P, P]
    b = torch.where(valid_batch, batch, zero).to(torch.int64)
    plane = (b[:, None, None, None, None] * channels + position.reshape(1, K, E, P, P)) * (H * W)
    plane = plane[..., None, None]
    flat = x.reshape(-1)

    def corner(yi: Tensor, xi: Tensor) -> Tensor:
        index = plane + (yi * W + xi)[:, :, None]  # [R, K, E, P, P, S, S]
        return flat.index_select(0, index.reshape(-1)).reshape(index.shape)

    weight = lambda t: t[:, :, None]  # noqa: E731  (broadcast over the channels of a class)
    value = (weight((1 - lx) * (1 - ly)) * corner(y0, x0) + weight((1 - lx) * ly) * corner(y1, x0)
             + weight(lx * (1 - ly)) * corner(y0, x1) + weight(lx * ly) * corner(y1, x1))
    value = torch.where(weight(keep), value, zero)
    total = value.sum(dim=(-2, -1))  # [R, K, E, P, P]
    count = keep.to(compute).sum(dim=(-2, -1))[:, :, None]
    out = torch.where(count > 0, total / count.clamp(min=1.0), zero)
    return out.flatten(1, 2)[1:].to(input.dtype)  # [R, K*E = output_dim, P, P]
