"""The original code's +1 box convention, on detectron2's continuous boxes.

In the original (py-faster-rcnn, Deformable ConvNets) a box (x1, y1, x2, y2) names its first
and last pixel inside: its width is x2 - x1 + 1. dcn_det keeps the same boxes as continuous
(x1, y1, x2 + 1, y2 + 1), which detectron2's Box2BoxTransform and NMS handle exactly (the
decoded boxes and IoUs agree; docs/original_models.md).
"""
from typing import Tuple

import torch


def clip_plus_one(boxes: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
    """The original's clip to [0, W-1] x [0, H-1] in the +1 convention, on continuous boxes:
    x1 in [0, W-1], x2 in [1, W] (likewise y)."""
    height, width = image_size
    return torch.stack([boxes[:, 0].clamp(0, width - 1), boxes[:, 1].clamp(0, height - 1),
                        boxes[:, 2].clamp(1, width), boxes[:, 3].clamp(1, height)], dim=1)


def clip_predicted_plus_one(boxes, proposals):
    """FastRCNNOutputLayers.predict_boxes' per-image boxes ``[R, 4K]`` clipped by
    :func:`clip_plus_one` to each proposal set's image (MODEL.ROI_HEADS.CLIP_PLUS_ONE)."""
    return tuple(clip_plus_one(b.reshape(-1, 4), p.image_size).reshape(b.shape) for b, p in zip(boxes, proposals))


def plus_one_corners(coords: torch.Tensor) -> torch.Tensor:
    """Continuous boxes ``[R, 4]`` (or RoIs ``[R, 5]`` with the batch index first) as the
    original's pooling ops take them: x2, y2 one smaller, the last pixel inside (the ops add
    the 1 back)."""
    shift = coords.new_zeros(coords.shape[-1])
    shift[-2:] = 1
    return coords - shift
