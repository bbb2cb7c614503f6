"""The anchors of the original Faster R-CNN / R-FCN code (py-faster-rcnn's generate_anchors,
which the authors' MXNet models were trained with), as a detectron2 anchor generator.

Per cell, for each aspect ratio r (h / w) and then each scale s (ratio-major order):
w0 = round(sqrt(stride^2 / r)), h0 = round(w0 * r) (round half to even, as numpy), then
w = w0 * s, h = h0 * s, centred on the cell's first pixel centre (stride - 1) / 2 in the +1
box convention (x2 is the last pixel inside). Here the boxes are continuous, (x1, y1, x2 + 1,
y2 + 1), so a cell's anchors are centred at stride / 2 and decoding them with detectron2's
Box2BoxTransform gives the original's boxes with x2, y2 one larger (docs/original_models.md).
Scales come from MODEL.ANCHOR_GENERATOR.SIZES: s = size / stride (64, 128, 256, 512 at stride
16 are the original scales 4, 8, 16, 32).
"""
import math
from typing import List, Sequence

import torch
from torch import nn

from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import ANCHOR_GENERATOR_REGISTRY
from detectron2.structures import Boxes


def rounded_cell_anchors(stride: int, sizes: Sequence[float], aspect_ratios: Sequence[float]) -> torch.Tensor:
    """[len(aspect_ratios) * len(sizes), 4] anchors of the cell at the origin, ratio-major,
    continuous (x1, y1, x2, y2), float64."""
    centre = (stride - 1) / 2.0
    anchors = []
    for ratio in aspect_ratios:
        w0 = round(math.sqrt(stride * stride / ratio))  # Python's round: half to even, as numpy
        h0 = round(w0 * ratio)
        for size in sizes:
            scale = size / stride
            w, h = w0 * scale, h0 * scale
            # +1 convention: x1 = c - (w - 1) / 2, x2 = c + (w - 1) / 2; continuous x2 is one more.
            anchors.append([centre - 0.5 * (w - 1), centre - 0.5 * (h - 1),
                            centre + 0.5 * (w - 1) + 1, centre + 0.5 * (h - 1) + 1])
    return torch.tensor(anchors, dtype=torch.float64)


@ANCHOR_GENERATOR_REGISTRY.register()
class RoundedAnchorGenerator(nn.Module):
    """Anchors of the original code (module docstring): per feature map of stride S, the
    cell anchors of :func:`rounded_cell_anchors` shifted by (S*j, S*i) to cell (i, j), in
    (row, column, anchor) order, as detectron2's RPN expects."""

    box_dim: int = 4

    @configurable
    def __init__(self, *, sizes: List[List[float]], aspect_ratios: List[List[float]], strides: List[int]):
        super().__init__()
        self.strides = [int(s) for s in strides]
        # Plain lists: a LazyConfig hands over OmegaConf's ListConfig.
        sizes = [list(s) for s in sizes]
        aspect_ratios = [list(a) for a in aspect_ratios]
        if len(sizes) == 1:
            sizes = sizes * len(self.strides)
        if len(aspect_ratios) == 1:
            aspect_ratios = aspect_ratios * len(self.strides)
        if len(sizes) != len(self.strides) or len(aspect_ratios) != len(self.strides):
            raise ValueError(
                f"RoundedAnchorGenerator: sizes ({len(sizes)} lists) and aspect_ratios ({len(aspect_ratios)} lists) "
                f"need one list per feature map ({len(self.strides)}) or a single list for all")
        for i, stride in enumerate(self.strides):
            cell = rounded_cell_anchors(stride, sizes[i], aspect_ratios[i]).float()
            # Not saved in checkpoints: they follow from the config.
            self.register_buffer(f"cell_anchors_{i}", cell, persistent=False)

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]):
        return {
            "sizes": [list(s) for s in cfg.MODEL.ANCHOR_GENERATOR.SIZES],
            "aspect_ratios": [list(a) for a in cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS],
            "strides": [x.stride for x in input_shape],
        }

    def _cell_anchors(self, level: int) -> torch.Tensor:
        return getattr(self, f"cell_anchors_{level}")

    @property
    def num_cell_anchors(self) -> List[int]:
        return self.num_anchors

    @property
    def num_anchors(self) -> List[int]:
        """Anchors per cell, per feature map."""
        return [len(self._cell_anchors(i)) for i in range(len(self.strides))]

    def forward(self, features: List[torch.Tensor]) -> List[Boxes]:
        anchors = []
        for level, feature in enumerate(features):
            height, width = feature.shape[-2:]
            cell = self._cell_anchors(level)
            stride = self.strides[level]
            ys = torch.arange(height, device=cell.device, dtype=torch.float32) * stride
            xs = torch.arange(width, device=cell.device, dtype=torch.float32) * stride
            shift_y, shift_x = torch.meshgrid(ys, xs, indexing="ij")
            shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=-1).reshape(-1, 1, 4)
            anchors.append(Boxes((shifts + cell.view(1, -1, 4)).reshape(-1, 4)))
        return anchors
