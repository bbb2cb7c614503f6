"""Deformable RoI pooling modules.

- :class:`DeformRoIPool` — Faster R-CNN deformable RoI pooling (DCNv1 "dpool").
- :class:`ModulatedDeformRoIPool` — DCNv2 "mdpool": dpool plus a learned mask per bin.
- :class:`DeformPSRoIPool` — R-FCN deformable position-sensitive RoI pooling.

Each pools once without offsets, predicts normalised offsets from that (zero-initialised
last layer, so at step 0 the result equals plain pooling), and pools again with them.
"""
from typing import Optional, Sequence

from torch import Tensor, nn

from dcn_det.ops import deform_psroi_pool

from .rois import RoIs, as_rois


def _fc_stack(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear+ReLU for each hidden size, then a zero-initialised Linear."""
    layers = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        in_features = width
    last = nn.Linear(in_features, out_features)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class DeformRoIPool(nn.Module):
    """Deformable RoI pooling (DCNv1): ``forward(x, rois) -> [R, C, P, P]``.

    Args:
        in_channels: C, channels of ``x``.
        output_size: P, bins per side.
        spatial_scale: feature-map size / image size.
        sample_per_part: bilinear samples per bin per side.
        trans_std: offset scale; a bin moves by ``offset * trans_std * roi size``.
        offset_fc_dims: hidden widths of the fc layers that predict the offsets from the
            plainly pooled features (the last, zero-initialised layer outputs 2*S*S);
            empty for a single fc, as in the original implementation.
        part_size: S, offsets per side (0 = output_size). The offsets are predicted from
            features pooled at S x S, so a smaller S keeps the fc layers small for large
            outputs (e.g. 14x14 bins with a 7x7 offset grid).

    ``forward(x, rois, spatial_scale=None)``: ``rois`` is ``[R, 5]`` (batch_index, x1, y1,
    x2, y2) in image coordinates, or one detectron2 ``Boxes`` (or ``[Ri, 4]`` tensor) per
    image; ``spatial_scale`` overrides the constructor's (one module can serve the levels
    of a feature pyramid).
    """

    def __init__(
        self,
        in_channels: int,
        output_size: int = 7,
        spatial_scale: float = 1.0 / 16,
        sample_per_part: int = 4,
        trans_std: float = 0.1,
        offset_fc_dims: Sequence[int] = (1024, 1024),
        part_size: int = 0,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.output_size = output_size
        self.part_size = part_size or output_size
        self.spatial_scale = spatial_scale
        self.sample_per_part = sample_per_part
        self.trans_std = trans_std
        flat = in_channels * self.part_size * self.part_size
        self.offset_fc = _fc_stack(flat, offset_fc_dims, 2 * self.part_size * self.part_size)

    def _pool(self, x: Tensor, rois: Tensor, scale: float, size: int, offset=None) -> Tensor:
        return deform_psroi_pool(
            x, rois, offset, scale, self.in_channels, 1, size, self.part_size,
            self.sample_per_part, self.trans_std, no_trans=offset is None,
        )

    def _pool_with_offsets(self, x: Tensor, rois: Tensor, spatial_scale: Optional[float]):
        """(features pooled at part_size without offsets, output pooled with offsets)."""
        scale = self.spatial_scale if spatial_scale is None else spatial_scale
        plain = self._pool(x, rois, scale, self.part_size)
        offset = self.offset_fc(plain.flatten(1)).view(-1, 2, self.part_size, self.part_size)
        return plain, self._pool(x, rois, scale, self.output_size, offset)

    def forward(self, x: Tensor, rois: RoIs, spatial_scale: Optional[float] = None) -> Tensor:
        rois = as_rois(rois, x.device, x.dtype)
        return self._pool_with_offsets(x, rois, spatial_scale)[1]

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, output_size={self.output_size}, "
            f"part_size={self.part_size}, spatial_scale={self.spatial_scale}, sample_per_part={self.sample_per_part}, "
            f"trans_std={self.trans_std}"
        )


class ModulatedDeformRoIPool(DeformRoIPool):
    """Modulated deformable RoI pooling (DCNv2 "mdpool"): ``forward(x, rois) -> [R, C, P, P]``.

    As :class:`DeformRoIPool`, plus ``mask_fc`` (same input and hidden widths,
    zero-initialised last layer, sigmoid) giving one scalar per output bin that multiplies
    the bin's output; at step 0 the mask is 0.5 everywhere.
    """

    def __init__(self, in_channels: int, output_size: int = 7, *args, offset_fc_dims: Sequence[int] = (1024, 1024), **kwargs):
        super().__init__(in_channels, output_size, *args, offset_fc_dims=offset_fc_dims, **kwargs)
        flat = in_channels * self.part_size * self.part_size
        self.mask_fc = _fc_stack(flat, offset_fc_dims, output_size * output_size)

    def forward(self, x: Tensor, rois: RoIs, spatial_scale: Optional[float] = None) -> Tensor:
        rois = as_rois(rois, x.device, x.dtype)
        plain, pooled = self._pool_with_offsets(x, rois, spatial_scale)
        mask = self.mask_fc(plain.flatten(1)).sigmoid().view(-1, 1, self.output_size, self.output_size)
        return pooled * mask


class DeformPSRoIPool(nn.Module):
    """R-FCN deformable position-sensitive RoI pooling.

    ``forward(features, score_maps, rois) -> [R, output_dim, k, k]``.

    ``conv_offset`` (1x1, zero-initialised) turns ``features`` into 2*k*k*num_offset_classes
    offset maps, which are PS-RoI pooled without offsets to give per-RoI offsets
    ``[R, 2*num_offset_classes, k, k]``; ``score_maps`` (``[N, output_dim*k*k, H, W]``) are
    then pooled with them.

    Args:
        in_channels: channels of ``features``.
        output_dim: output channels (e.g. num_classes + 1 for R-FCN's class scores, 4 for
            class-agnostic boxes).
        group_size: k, the position-sensitive grid (also the bins per side).
        spatial_scale, sample_per_part, trans_std: as :func:`dcn_det.ops.deform_psroi_pool`.
        class_agnostic_offsets: one offset field shared by all output channels (True), or
            one per output channel ("class-specific", num_offset_classes = output_dim).
        modulated: DCNv2-style modulation: ``conv_offset`` also predicts k*k*num_offset_classes
            mask logits, PS-RoI pooled like the offsets; their sigmoid (0.5 at step 0)
            multiplies each bin of the classes they belong to.
    """

    def __init__(
        self,
        in_channels: int,
        output_dim: int,
        group_size: int = 7,
        spatial_scale: float = 1.0 / 16,
        sample_per_part: int = 4,
        trans_std: float = 0.1,
        class_agnostic_offsets: bool = False,
        modulated: bool = False,
    ):
        super().__init__()
        self.output_dim = output_dim
        self.group_size = group_size
        self.spatial_scale = spatial_scale
        self.sample_per_part = sample_per_part
        self.trans_std = trans_std
        self.modulated = modulated
        self.num_offset_classes = 1 if class_agnostic_offsets else output_dim
        fields = 3 if modulated else 2  # (dx, dy[, mask]) per class and bin
        self.conv_offset = nn.Conv2d(in_channels, fields * self.num_offset_classes * group_size * group_size, 1)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def _pool_plain(self, maps: Tensor, rois: Tensor, output_dim: int) -> Tensor:
        k = self.group_size
        return deform_psroi_pool(maps, rois, None, self.spatial_scale, output_dim, k, k, k, self.sample_per_part, no_trans=True)

    def forward(self, features: Tensor, score_maps: Tensor, rois: RoIs) -> Tensor:
        rois = as_rois(rois, score_maps.device, score_maps.dtype)
        k, classes = self.group_size, self.num_offset_classes
        branch = self.conv_offset(features)
        offset = self._pool_plain(branch[:, : 2 * classes * k * k], rois, 2 * classes)
        out = deform_psroi_pool(
            score_maps, rois, offset, self.spatial_scale, self.output_dim, k, k, k,
            self.sample_per_part, self.trans_std, no_trans=False,
        )
        if not self.modulated:
            return out
        mask = self._pool_plain(branch[:, 2 * classes * k * k :], rois, classes).sigmoid()
        r = out.shape[0]
        per_class = self.output_dim // classes  # explicit, not -1: r may be 0 (no proposals)
        return (out.view(r, classes, per_class, k, k) * mask.view(r, classes, 1, k, k)).view(r, self.output_dim, k, k)

    def extra_repr(self) -> str:
        return (
            f"output_dim={self.output_dim}, group_size={self.group_size}, "
            f"spatial_scale={self.spatial_scale}, sample_per_part={self.sample_per_part}, "
            f"trans_std={self.trans_std}, num_offset_classes={self.num_offset_classes}, "
            f"modulated={self.modulated}"
        )
