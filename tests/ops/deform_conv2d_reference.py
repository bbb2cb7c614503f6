"""Plain-PyTorch reference for deformable convolution (DCNv1 / modulated DCNv2).

Written from the semantics in docs/semantics.md section 1, independently of the compiled kernels:

* sampling point of output (ho, wo) and tap (i, j) of offset group g:
  ``y = ho*stride_h - pad_h + i*dil_h + dy``, ``x = wo*stride_w - pad_w + j*dil_w + dx``
  with ``(dy, dx) = offset[:, 2*(g*kh*kw + k)], offset[:, 2*(g*kh*kw + k) + 1]``, k = i*kw + j;
* bilinear interpolation in which every corner outside the map counts as 0 (so a sample
  with y <= -1, y >= H, x <= -1 or x >= W is 0): ``border="dcnv2"``;
  or, with ``border="dcnv1"`` (MXNet's DeformableConvolution), a sample counts only if
  0 <= y < H and 0 <= x < W, and a point with floor(y) >= H-1 is moved onto row H-1
  (likewise columns), so the last row is interpolated along x only;
* the sampled value is multiplied by ``mask[:, g*kh*kw + k]`` (when a mask is given);
* the sampled "columns" are contracted with the weight per weight group, plus bias.

Everything is vectorised and differentiable, so autograd through :func:`deform_conv2d_ref`
gives reference gradients for input, offset, mask, weight and bias.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

IntPair = Union[int, Tuple[int, int]]


def _pair(v: IntPair) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def out_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def bilinear_sample_zero_pad(img: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Bilinearly sample ``img`` [N, G, Cg, H, W] at points ``y``, ``x`` [N, G, P].

    Corners outside the map contribute 0. Returns [N, G, Cg, P].
    """
    n, g, cg, h, w = img.shape
    flat = img.reshape(n, g, cg, h * w)
    y0 = torch.floor(y)
    x0 = torch.floor(x)
    ly = y - y0  # differentiable w.r.t. y (floor has zero gradient)
    lx = x - x0
    y0 = y0.long()
    x0 = x0.long()
    out = None
    for cy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for cx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            inside = (cy >= 0) & (cy < h) & (cx >= 0) & (cx < w)
            idx = (cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1))  # [N, G, P], safe index
            vals = torch.gather(flat, 3, idx.unsqueeze(2).expand(n, g, cg, idx.shape[-1]))
            coef = (wy * wx * inside.to(wy.dtype)).unsqueeze(2)  # [N, G, 1, P]
            term = vals * coef
            out = term if out is None else out + term
    return out


def bilinear_sample_dcnv1(img: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """The DCNv1 rule, as MXNet's DeformableConvolution states it: 0 unless 0 <= y < H and
    0 <= x < W; otherwise the point is clamped onto the last row/column when it lies in it
    (a constant there, so no gradient w.r.t. that coordinate), then interpolated from 4
    corners inside the map. Returns [N, G, Cg, P] like :func:`bilinear_sample_zero_pad`."""
    n, g, cg, h, w = img.shape
    valid = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    last_row = torch.floor(y) >= h - 1
    last_col = torch.floor(x) >= w - 1
    ys = torch.where(last_row, torch.full_like(y, h - 1), y)
    xs = torch.where(last_col, torch.full_like(x, w - 1), x)
    # Points outside are moved to (0, 0) so every index below is valid, then zeroed.
    ys = torch.where(valid, ys, torch.zeros_like(ys))
    xs = torch.where(valid, xs, torch.zeros_like(xs))
    y0, x0 = torch.floor(ys), torch.floor(xs)
    ly, lx = ys - y0, xs - x0
    y0, x0 = y0.long(), x0.long()
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)  # weight 0 where clamped
    flat = img.reshape(n, g, cg, h * w)
    out = None
    for cy, wy in ((y0, 1 - ly), (y1, ly)):
        for cx, wx in ((x0, 1 - lx), (x1, lx)):
            idx = cy * w + cx
            vals = torch.gather(flat, 3, idx.unsqueeze(2).expand(n, g, cg, idx.shape[-1]))
            term = vals * (wy * wx * valid.to(wy.dtype)).unsqueeze(2)
            out = term if out is None else out + term
    return out


def deform_conv2d_ref(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: Optional[Tensor] = None,
    border: str = "dcnv2",
) -> Tensor:
    sample = {"dcnv2": bilinear_sample_zero_pad, "dcnv1": bilinear_sample_dcnv1}[border]
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    n, c, h, w = input.shape
    co, cpg, kh, kw = weight.shape
    groups = c // cpg
    taps = kh * kw
    og = offset.shape[1] // (2 * taps)
    ho = out_size(h, kh, sh, ph, dh)
    wo = out_size(w, kw, sw, pw, dw)
    assert offset.shape == (n, 2 * og * taps, ho, wo), offset.shape
    assert c % og == 0 and c % groups == 0 and co % groups == 0
    dev, dt = input.device, input.dtype

    # Regular-grid positions, [taps, Ho, Wo]; tap k = i*kw + j.
    i = torch.arange(kh, device=dev, dtype=dt).repeat_interleave(kw)  # [taps]
    j = torch.arange(kw, device=dev, dtype=dt).repeat(kh)
    oy = torch.arange(ho, device=dev, dtype=dt) * sh - ph
    ox = torch.arange(wo, device=dev, dtype=dt) * sw - pw
    base_y = oy.view(1, ho, 1) + (i * dh).view(taps, 1, 1)  # [taps, Ho, 1]
    base_x = ox.view(1, 1, wo) + (j * dw).view(taps, 1, 1)  # [taps, 1, Wo]

    off = offset.reshape(n, og, taps, 2, ho, wo)
    y = base_y + off[:, :, :, 0]  # [N, og, taps, Ho, Wo]
    x = base_x + off[:, :, :, 1]

    img = input.reshape(n, og, c // og, h, w)
    cols = sample(img, y.reshape(n, og, -1), x.reshape(n, og, -1))
    cols = cols.reshape(n, og, c // og, taps, ho, wo)
    if mask is not None:
        assert mask.shape == (n, og * taps, ho, wo), mask.shape
        cols = cols * mask.reshape(n, og, 1, taps, ho, wo)

    # [N, C, taps, Ho, Wo] -> per weight group contraction.
    cols = cols.reshape(n, groups, cpg, taps, ho, wo)
    wg = weight.reshape(groups, co // groups, cpg, taps)
    out = torch.einsum("ngckyx,gock->ngoyx", cols, wg).reshape(n, co, ho, wo)
    if bias is not None:
        out = out + bias.view(1, co, 1, 1)
    return out
