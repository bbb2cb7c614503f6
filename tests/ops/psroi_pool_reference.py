"""Plain-Python reference for ``psroi_pool`` (integer-bin position-sensitive RoI pooling).

Written from the semantics of MXNet 1.9.1 ``contrib.PSROIPooling`` as docs/semantics.md
states them, not from the kernels: per RoI ``(b, x1, y1, x2, y2)``, output channel
``ctop`` and bin ``(ph, pw)``

    start_w = round(x1) * scale;  end_w = (round(x2) + 1) * scale     (C round; same for h)
    roi_w = max(end_w - start_w, 0.1);  bin_w = roi_w / pooled_size
    wstart = floor(pw * bin_w + start_w);  wend = ceil((pw + 1) * bin_w + start_w)
    both clamped to [0, W] (h likewise)
    gw = clamp(floor(pw * group_size / pooled_size), 0, group_size - 1)   (gh likewise)
    value = mean of input[b, (ctop * group_size + gh) * group_size + gw, hstart:hend, wstart:wend]
            0 if the rectangle is empty or b is outside [0, N)

The bounds are evaluated one IEEE operation at a time in ``bounds_dtype`` (the dtype the
operator computes them in: float32 for float32 inputs), so that a bound that is an exact
integer in real arithmetic falls on the same side as in the operator. The values are
float64 torch ops on ``input``: autograd through the reference gives the exact gradient.
"""
import math
from typing import List, Tuple

import torch
from torch import Tensor


def c_round(v: float) -> float:
    """C ``round`` of a float: halves away from zero (Python's round sends them to even)."""
    a = abs(v)
    r = math.floor(a)
    if a - r >= 0.5:  # exact for |v| < 2**52
        r += 1
    return math.copysign(r, v) if r != 0 else 0.0


def bin_bounds(roi: Tensor, spatial_scale: float, pooled_size: int, height: int, width: int,
               bounds_dtype: torch.dtype = torch.float64) -> Tuple[List[Tuple[int, int]], List[Tuple[int, int]]]:
    """([(hstart, hend)] per bin row, [(wstart, wend)] per bin column) of one RoI row."""
    def t(v):
        return torch.tensor(v, dtype=bounds_dtype)

    roi = [float(v) for v in roi.to(bounds_dtype)]  # the operator reads rois in its compute dtype
    scale = t(spatial_scale)
    result = []
    for lo, hi, size in ((roi[2], roi[4], height), (roi[1], roi[3], width)):
        start = t(c_round(lo)) * scale
        end = (t(c_round(hi)) + t(1.0)) * scale
        length = torch.maximum(end - start, t(0.1))
        step = length / t(float(pooled_size))
        bounds = []
        for p in range(pooled_size):
            first = math.floor((t(float(p)) * step + start).item())
            last = math.ceil((t(float(p + 1)) * step + start).item())
            bounds.append((min(max(first, 0), size), min(max(last, 0), size)))
        result.append(bounds)
    return result[0], result[1]


def psroi_pool_reference(input: Tensor, rois: Tensor, spatial_scale: float, output_dim: int, group_size: int,
                         pooled_size: int, bounds_dtype: torch.dtype = torch.float64) -> Tensor:
    """float64 [R, output_dim, pooled_size, pooled_size]; differentiable w.r.t. ``input``."""
    x = input.to(torch.float64)
    n, channels, height, width = x.shape
    assert channels == output_dim * group_size ** 2
    rows = []
    for roi in rois.detach().cpu():
        batch = float(roi[0].to(bounds_dtype))
        bins = []
        if 0 <= batch < n:
            b = int(batch)  # truncation, as the original's int conversion
            h_bounds, w_bounds = bin_bounds(roi, spatial_scale, pooled_size, height, width, bounds_dtype)
        for ph in range(pooled_size):
            for pw in range(pooled_size):
                if not 0 <= batch < n:
                    bins.append(x.new_zeros(output_dim))
                    continue
                (hs, he), (ws, we) = h_bounds[ph], w_bounds[pw]
                if he <= hs or we <= ws:
                    bins.append(x.new_zeros(output_dim))
                    continue
                gh = min(max(ph * group_size // pooled_size, 0), group_size - 1)
                gw = min(max(pw * group_size // pooled_size, 0), group_size - 1)
                # channel (ctop * group_size + gh) * group_size + gw for every ctop
                planes = x[b, gh * group_size + gw::group_size * group_size]
                bins.append(planes[:, hs:he, ws:we].mean(dim=(1, 2)))
        rows.append(torch.stack(bins, dim=1).reshape(output_dim, pooled_size, pooled_size)
                    if bins else x.new_zeros(output_dim, pooled_size, pooled_size))
    if not rows:
        return x.new_zeros(0, output_dim, pooled_size, pooled_size)
    return torch.stack(rows)
