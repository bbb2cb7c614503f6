"""Deformable position-sensitive RoI pooling (R-FCN) and deformable RoI pooling.

Python entry point of ``torch.ops.dcn_det.deform_psroi_pool`` (the operator of the original
Deformable ConvNets, MXNet ``DeformablePSROIPooling``), and its fake (meta) kernels.
Kernels: ``csrc/cpu``, ``csrc/cuda``; gradient: ``csrc/autograd`` + the
``_deform_psroi_pool_backward`` op.
"""
from typing import Optional

import torch
from torch import Tensor

from . import _extension  # noqa: F401  (registers torch.ops.dcn_det)
from .deform_psroi_pool_composite import deform_psroi_pool_composite


def deform_psroi_pool(
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
    """Deformable (position-sensitive) RoI pooling.

    R-FCN uses ``group_size = k = pooled_size``; Faster R-CNN's deformable RoI pooling uses
    ``group_size = 1, output_dim = C``.

    Args:
        input: ``[N, output_dim * group_size**2, H, W]``.
        rois: ``[R, 5]`` rows of (batch_index, x1, y1, x2, y2) in image coordinates.
        offset: ``[R, 2*num_classes, part_size, part_size]`` normalised offsets, channel
            ``2*cls`` = dx and ``2*cls+1`` = dy for output channels of class ``cls``
            (``num_classes = 1``: class-agnostic). May be None when ``no_trans``.
        spatial_scale: feature-map size / image size (e.g. 1/16).
        output_dim: output channels.
        group_size: position-sensitive grid size (1 = plain RoI pooling).
        pooled_size: output bins per side.
        part_size: offset grid per side; 0 means ``pooled_size``.
        sample_per_part: bilinear samples per bin per side.
        trans_std: scale of the offsets; a bin moves by ``offset * trans_std * roi size``.
        no_trans: ignore ``offset`` (plain PS-RoI pooling with the same sampling).

    Returns:
        ``[R, output_dim, pooled_size, pooled_size]``: per bin, the mean of the bilinear
        samples that fall inside the map.

    Under ``torch.onnx.export`` this runs :func:`deform_psroi_pool_composite` (standard
    ops only) instead of the compiled op, so exported models need no custom operator.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"deform_psroi_pool: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(rois, Tensor):
        raise TypeError(f"deform_psroi_pool: rois must be a Tensor [R, 5], got {type(rois).__name__}")
    if offset is not None and not isinstance(offset, Tensor):
        raise TypeError(f"deform_psroi_pool: offset must be a Tensor or None, got {type(offset).__name__}")
    if offset is None and not no_trans:
        raise ValueError("deform_psroi_pool: offset is required unless no_trans=True")
    if not isinstance(part_size, int) or part_size < 0:
        raise ValueError(f"deform_psroi_pool: part_size must be an int >= 0 (0 means pooled_size), got {part_size!r}")
    part_size = part_size or pooled_size
    if torch.onnx.is_in_onnx_export():
        # ONNX runtimes do not know the compiled op: export the same computation written
        # with standard ops (both of torch.onnx.export's exporters set this flag).
        return deform_psroi_pool_composite(
            input, rois, offset, spatial_scale, output_dim, group_size, pooled_size, part_size,
            sample_per_part, trans_std, no_trans,
        )
    return torch.ops.dcn_det.deform_psroi_pool(
        input,
        rois,
        offset,
        float(spatial_scale),
        int(output_dim),
        int(group_size),
        int(pooled_size),
        int(part_size),
        int(sample_per_part),
        float(trans_std),
        bool(no_trans),
    )


@torch.library.register_fake("dcn_det::deform_psroi_pool")
def _deform_psroi_pool_fake(input, rois, offset, spatial_scale, output_dim, group_size, pooled_size, part_size, sample_per_part, trans_std, no_trans):
    torch._check(input.dim() == 4, lambda: "deform_psroi_pool: input must be 4-D")
    torch._check(rois.dim() == 2 and rois.shape[1] == 5, lambda: "deform_psroi_pool: rois must be [R, 5]")
    torch._check(input.shape[1] == output_dim * group_size * group_size, lambda: "deform_psroi_pool: input channels")
    return input.new_empty((rois.shape[0], output_dim, pooled_size, pooled_size))


@torch.library.register_fake("dcn_det::_deform_psroi_pool_backward")
def _deform_psroi_pool_backward_fake(grad_output, input, rois, offset, *params):
    grad_offset = offset.new_empty(offset.shape) if offset is not None else input.new_empty((0,))
    return input.new_empty(input.shape), grad_offset
