"""RoI format conversion shared by the pooling modules.

Accepts what detectron2 passes around (one ``Boxes`` per image, duck-typed through its
``.tensor`` attribute so this module does not import detectron2) as well as raw tensors.
"""
from typing import Sequence, Union

import torch
from torch import Tensor

RoIs = Union[Tensor, Sequence]


def as_rois(rois: RoIs, device=None, dtype=None) -> Tensor:
    """Return ``[R, 5]`` rows of (batch_index, x1, y1, x2, y2).

    Args:
        rois: a ``[R, 5]`` tensor (returned as is), or a list with one entry per image of
            ``[Ri, 4]`` boxes (x1, y1, x2, y2) as tensors or detectron2 ``Boxes``.
    """
    if isinstance(rois, Tensor):
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f"rois must be a [R, 5] tensor (batch_index, x1, y1, x2, y2), got shape {tuple(rois.shape)}")
        return rois
    if not isinstance(rois, (list, tuple)):
        raise TypeError(f"rois must be a [R, 5] tensor or a list of per-image boxes, got {type(rois).__name__}")
    boxes = [getattr(b, "tensor", b) for b in rois]
    for i, b in enumerate(boxes):
        if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
            shape = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
            raise ValueError(f"rois[{i}] must be [Ri, 4] boxes (x1, y1, x2, y2) or a detectron2 Boxes, got {shape}")
    if not boxes:
        return torch.zeros((0, 5), device=device, dtype=dtype or torch.float32)
    device = device or boxes[0].device
    dtype = dtype or boxes[0].dtype
    index = torch.cat([torch.full((len(b), 1), i, device=device, dtype=dtype) for i, b in enumerate(boxes)])
    return torch.cat([index, torch.cat(boxes).to(device=device, dtype=dtype)], dim=1)
