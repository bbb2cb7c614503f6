"""A drop-in for detectron2's ``ROIPooler`` that pools with deformable RoI pooling."""
import math
from typing import List, Sequence

import torch
from detectron2.modeling.poolers import assign_boxes_to_levels, convert_boxes_to_pooler_format
from detectron2.structures import Boxes
from torch import Tensor, nn

from dcn_det.layers import DeformRoIPool, ModulatedDeformRoIPool


class DeformROIPooler(nn.Module):
    """Deformable (``modulated=False``, DCNv1 dpool) or modulated (DCNv2 mdpool) RoI pooling
    over one feature map (C4) or a feature pyramid (FPN).

    Same interface as detectron2's ``ROIPooler``: ``forward(x: list[Tensor], box_lists:
    list[Boxes]) -> [R, C, output_size, output_size]``, boxes assigned to pyramid levels by
    detectron2's rule (canonical box size 224 at level 4). One offset (and mask) branch is
    shared by all levels, as the box head that follows is; ``offset_per_level`` gives each
    level its own (``level_pools.<i>``), as the authors' Deformable FPN (``offset_p2..p5``,
    MODEL.DCN.POOL_OFFSET_PER_LEVEL).
    """

    def __init__(
        self,
        output_size: int,
        scales: Sequence[float],
        in_channels: int,
        modulated: bool = False,
        sample_per_part: int = 4,
        trans_std: float = 0.1,
        offset_fc_dims: Sequence[int] = (1024, 1024),
        part_size: int = 0,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
        offset_per_level: bool = False,
    ):
        super().__init__()
        self.scales = tuple(scales)
        self.output_size = output_size
        self.min_level = int(-math.log2(self.scales[0]))
        self.max_level = int(-math.log2(self.scales[-1]))
        if not (math.isclose(self.min_level, -math.log2(self.scales[0])) and len(self.scales) == self.max_level - self.min_level + 1):
            raise ValueError(f"scales must be consecutive powers of 1/2, got {self.scales}")
        self.canonical_box_size = canonical_box_size
        self.canonical_level = canonical_level
        pool_cls = ModulatedDeformRoIPool if modulated else DeformRoIPool

        def make_pool(scale):
            return pool_cls(in_channels, output_size, spatial_scale=scale, sample_per_part=sample_per_part,
                            trans_std=trans_std, offset_fc_dims=offset_fc_dims, part_size=part_size)

        self.offset_per_level = bool(offset_per_level)
        if self.offset_per_level:
            self.level_pools = nn.ModuleList(make_pool(scale) for scale in self.scales)
        else:
            self.pool = make_pool(self.scales[0])

    def pool_of_level(self, level: int) -> nn.Module:
        """The deformable pooling module (with its offset branch) that pools level ``level``."""
        return self.level_pools[level] if self.offset_per_level else self.pool

    def forward(self, x: List[Tensor], box_lists: List[Boxes]) -> Tensor:
        if len(x) != len(self.scales):
            raise ValueError(f"DeformROIPooler: got {len(x)} feature maps for {len(self.scales)} scales")
        rois = convert_boxes_to_pooler_format(box_lists)
        if len(x) == 1:
            return self.pool_of_level(0)(x[0], rois, self.scales[0])
        levels = assign_boxes_to_levels(
            box_lists, self.min_level, self.max_level, self.canonical_box_size, self.canonical_level
        )
        size = self.output_size
        output = x[0].new_zeros((rois.shape[0], x[0].shape[1], size, size))
        for level, (features, scale) in enumerate(zip(x, self.scales)):
            index = torch.nonzero(levels == level, as_tuple=True)[0]
            # index_put_ rather than `output[index] = ...`: the TorchScript ONNX exporter bakes
            # the traced RoI count of a level into the latter (pytorch/pytorch#49852), and the
            # exported detector then fails on images whose boxes fall on the levels otherwise.
            output.index_put_((index,), self.pool_of_level(level)(features, rois[index], scale))
        return output


def build_deform_roi_pooler(cfg, output_size: int, scales: Sequence[float], in_channels: int) -> DeformROIPooler:
    """The pooler that MODEL.DCN.POOL ("dpool" or "mdpool") and MODEL.DCN.POOL_* describe."""
    kind = cfg.MODEL.DCN.POOL
    if kind not in ("dpool", "mdpool"):
        raise ValueError(f'MODEL.DCN.POOL must be "", "dpool" or "mdpool", got {kind!r}')
    return DeformROIPooler(
        output_size,
        scales,
        in_channels,
        modulated=kind == "mdpool",
        sample_per_part=cfg.MODEL.DCN.POOL_SAMPLE_PER_PART,
        trans_std=cfg.MODEL.DCN.POOL_TRANS_STD,
        offset_fc_dims=tuple(cfg.MODEL.DCN.POOL_OFFSET_FC_DIMS),
        part_size=cfg.MODEL.DCN.POOL_PART_SIZE,
        offset_per_level=cfg.MODEL.DCN.POOL_OFFSET_PER_LEVEL,
    )
