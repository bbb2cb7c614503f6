"""Position-sensitive RoI pooling with integer bins (the original, non-deformable R-FCN).

Python entry point of ``torch.ops.dcn_det.psroi_pool``: MXNet 1.9.1's
``contrib.PSROIPooling`` (docs/semantics.md, "Integer-bin PS-RoI pooling"), and its fake
(meta) kernels. Kernels: ``csrc/cpu/psroi_pool_kernel.cpp``, ``csrc/cuda/psroi_pool_kernel.cu``
(element math in ``csrc/common/psroi_pool_elements.h``); gradient: ``csrc/autograd`` + the
``_psroi_pool_backward`` op.
"""
import operator

import torch
from torch import Tensor

from . import _extension  # noqa: F401  (registers torch.ops.dcn_det)


def psroi_pool(
    input: Tensor,
    rois: Tensor,
    spatial_scale: float,
    output_dim: int,
    group_size: int,
    pooled_size: int,
) -> Tensor:
    """Position-sensitive RoI pooling over whole-pixel bins (MXNet ``contrib.PSROIPooling``).

    For RoI ``r = (b, x1, y1, x2, y2)`` the box is ``[round(x1) * s, (round(x2) + 1) * s)``
    (C round, halves away from zero; ``s = spatial_scale``), at least 0.1 wide and high, cut
    into ``pooled_size x pooled_size`` bins; bin ``(ph, pw)`` covers the pixels
    ``floor(ph * bin_h + y_start) <= h < ceil((ph + 1) * bin_h + y_start)`` (likewise w),
    clamped to the map, and its value is the mean of input channel
    ``(ctop * group_size + gh) * group_size + gw`` over them, ``gh = floor(ph * group_size /
    pooled_size)``. Empty bins, and every bin of a RoI whose batch index is outside
    ``[0, N)``, are 0. The bounds are computed in the input's dtype (float32 for
    float16/bfloat16) with the original's expressions, so float32 bins are MXNet's.

    Args:
        input: ``[N, output_dim * group_size**2, H, W]``, float32/64, float16, bfloat16.
        rois: ``[R, 5]`` rows of (batch_index, x1, y1, x2, y2) in image coordinates, on
            input's device, any floating dtype (computed in input's compute dtype).
        spatial_scale: feature-map size / image size (e.g. 1/16), > 0.
        output_dim: output channels, >= 1.
        group_size: position-sensitive grid per side, >= 1 (1: plain average RoI pooling;
            MXNet's ``group_size=0`` default means ``pooled_size``: pass it explicitly).
        pooled_size: output bins per side, >= 1.

    Returns:
        ``[R, output_dim, pooled_size, pooled_size]`` in input's dtype. The gradient reaches
        ``input`` (the bin's gradient / its pixel count, added to each of its pixels), not
        ``rois``. The CPU backward is deterministic; the CUDA backward uses atomic adds
        unless ``torch.use_deterministic_algorithms(True)``.

    ONNX: not exportable. Under ``torch.onnx.export`` this raises NotImplementedError
    (the bin bounds are data-dependent integer ranges; no composite of standard ops is
    provided).
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"psroi_pool: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(rois, Tensor):
        raise TypeError(f"psroi_pool: rois must be a Tensor [R, 5], got {type(rois).__name__}")
    sizes = {}
    for name, value in (("output_dim", output_dim), ("group_size", group_size), ("pooled_size", pooled_size)):
        try:
            sizes[name] = operator.index(value)
        except TypeError:
            raise TypeError(f"psroi_pool: {name} must be an int, got {type(value).__name__}") from None
    if torch.onnx.is_in_onnx_export():
        raise NotImplementedError(
            "psroi_pool (dcn_det::psroi_pool, integer-bin PS-RoI pooling) has no ONNX export: "
            "ONNX runtimes do not know the compiled op and no composite of standard ops is provided"
        )
    return torch.ops.dcn_det.psroi_pool(
        input, rois, float(spatial_scale), sizes["output_dim"], sizes["group_size"], sizes["pooled_size"]
    )


@torch.library.register_fake("dcn_det::psroi_pool")
def _psroi_pool_fake(input, rois, spatial_scale, output_dim, group_size, pooled_size):
    torch._check(input.dim() == 4, lambda: "psroi_pool: input must be 4-D [N, output_dim*group_size^2, H, W]")
    torch._check(rois.dim() == 2 and rois.shape[1] == 5, lambda: "psroi_pool: rois must have shape [R, 5]")
    torch._check(
        input.shape[1] == output_dim * group_size * group_size,
        lambda: f"psroi_pool: input must have output_dim * group_size^2 = {output_dim * group_size * group_size} channels",
    )
    return input.new_empty((rois.shape[0], output_dim, pooled_size, pooled_size))


@torch.library.register_fake("dcn_det::_psroi_pool_backward")
def _psroi_pool_backward_fake(grad_output, input, rois, spatial_scale, output_dim, group_size, pooled_size):
    return input.new_empty(input.shape)
