"""Deformable convolution (DCNv1) and modulated deformable convolution (DCNv2).

Python entry point of ``torch.ops.dcn_det.deform_conv2d``: argument checks that need
Python types, derivation of the weight/offset groups, and the fake (meta) kernels
used by ``torch.compile`` / ``torch.export``. Kernels: ``csrc/cpu``, ``csrc/cuda``;
gradient: ``csrc/autograd`` + the ``_deform_conv2d_backward`` op.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from . import _extension  # noqa: F401  (registers torch.ops.dcn_det)

IntPair = Union[int, Tuple[int, int]]

# deform_conv2d's border rules and their codes in the op schema (common/bilinear.h).
BORDERS = {"dcnv2": 0, "dcnv1": 1}


def border_code(name: str, border: str) -> int:
    """The schema's integer for border rule ``border``; a ValueError naming ``name`` otherwise."""
    if not isinstance(border, str) or border not in BORDERS:
        raise ValueError(f"{name} must be one of {sorted(BORDERS)}, got {border!r}")
    return BORDERS[border]


def int_pair(name: str, value: IntPair) -> Tuple[int, int]:
    """``value`` as (h, w): an int or a pair of ints; a TypeError naming ``name`` otherwise."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def _check_tensor(name: str, value, dim: int, layout: str) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"deform_conv2d: {name} must be a Tensor {layout}, got {type(value).__name__}")
    if value.dim() != dim:
        raise ValueError(f"deform_conv2d: {name} must be {dim}-D {layout}, got shape {tuple(value.shape)}")


def deform_conv2d(
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
    """Deformable 2-D convolution; modulated (DCNv2) when ``mask`` is given.

    Same signature and semantics as :func:`torchvision.ops.deform_conv2d`.

    Args:
        input: ``[N, C, H, W]``.
        offset: ``[N, 2*G*kh*kw, out_h, out_w]``; G (deformable groups) is inferred from
            the channel count. For group g and tap k (row-major over kh, kw), channels
            ``2*(g*kh*kw + k)`` and ``+1`` hold (dy, dx). Input channels are split into G
            consecutive blocks; block g uses offset group g.
        weight: ``[out_channels, C/groups, kh, kw]``; ``groups = C // weight.shape[1]``.
        bias: ``[out_channels]`` or None.
        stride, padding, dilation: int or (h, w).
        mask: ``[N, G*kh*kw, out_h, out_w]`` modulation scalars, or None (DCNv1).
        border: sampling rule at the map's border (docs/semantics.md section 1).
            ``"dcnv2"`` (default; torchvision's, MXNet's ModulatedDeformableConvolution):
            every corner outside the map counts as 0, points in ``(-1, H) x (-1, W)``
            interpolate. ``"dcnv1"`` (MXNet's DeformableConvolution, the original DCNv1
            networks): a point samples only if ``0 <= y < H`` and ``0 <= x < W``, and a
            point in the last row (column) is moved onto it.

    Returns:
        ``[N, out_channels, out_h, out_w]``.

    Sampling point of output p0 and tap k: ``p0*stride - padding + k*dilation + offset``,
    bilinearly interpolated under ``border``.
    float16/bfloat16 are computed in float32.
    """
    _check_tensor("input", input, 4, "[N, C, H, W]")
    _check_tensor("offset", offset, 4, "[N, 2*offset_groups*kh*kw, out_h, out_w]")
    _check_tensor("weight", weight, 4, "[out_channels, C/groups, kh, kw]")
    if mask is not None:
        _check_tensor("mask", mask, 4, "[N, offset_groups*kh*kw, out_h, out_w]")
    if bias is not None:
        _check_tensor("bias", bias, 1, "[out_channels]")
    stride_h, stride_w = int_pair("deform_conv2d: stride", stride)
    pad_h, pad_w = int_pair("deform_conv2d: padding", padding)
    dil_h, dil_w = int_pair("deform_conv2d: dilation", dilation)
    border_id = border_code("deform_conv2d: border", border)

    in_channels, weight_channels = input.shape[1], weight.shape[1]
    if weight_channels == 0 or in_channels % weight_channels != 0:
        raise ValueError(
            f"deform_conv2d: input channels ({in_channels}) must be a multiple of "
            f"weight.shape[1] ({weight_channels}); groups = input.shape[1] // weight.shape[1]"
        )
    groups = in_channels // weight_channels
    taps = weight.shape[2] * weight.shape[3]
    if taps == 0 or offset.shape[1] == 0 or offset.shape[1] % (2 * taps) != 0:
        raise ValueError(
            f"deform_conv2d: offset must have 2*offset_groups*kh*kw channels "
            f"(a positive multiple of {2 * taps} for a {weight.shape[2]}x{weight.shape[3]} kernel), "
            f"got shape {tuple(offset.shape)}"
        )
    offset_groups = offset.shape[1] // (2 * taps)
    return torch.ops.dcn_det.deform_conv2d(
        input, offset, weight, bias, mask, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, offset_groups,
        border_id,
    )


def _output_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


@torch.library.register_fake("dcn_det::deform_conv2d")
def _deform_conv2d_fake(
    input, offset, weight, bias, mask, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, offset_groups, border=0
):
    torch._check(input.dim() == 4 and weight.dim() == 4 and offset.dim() == 4, lambda: "deform_conv2d: expected 4-D tensors")
    out_h = _output_size(input.shape[2], weight.shape[2], stride_h, pad_h, dil_h)
    out_w = _output_size(input.shape[3], weight.shape[3], stride_w, pad_w, dil_w)
    torch._check(offset.shape[1] == 2 * offset_groups * weight.shape[2] * weight.shape[3], lambda: "deform_conv2d: offset channels")
    torch._check(input.shape[1] == weight.shape[1] * groups, lambda: "deform_conv2d: input channels != weight.shape[1] * groups")
    return input.new_empty((input.shape[0], weight.shape[0], out_h, out_w))


@torch.library.register_fake("dcn_det::_deform_conv2d_backward")
def _deform_conv2d_backward_fake(grad_output, input, offset, weight, mask, *params):
    grad_mask = mask.new_empty(mask.shape) if mask is not None else input.new_empty((0,))
    return (
        input.new_empty(input.shape),
        offset.new_empty(offset.shape),
        weight.new_empty(weight.shape),
        weight.new_empty((weight.shape[0],)),
        grad_mask,
    )
