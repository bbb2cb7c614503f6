"""Where stacked deformable convolutions sample (the DCNv1 paper's figure), and the hook
that reads a model's offset fields.

A stack of 3x3 deformable convolutions at one stride samples, for one output unit of the
top layer, 9 points in the layer below, 81 in the one below that, and so on; each point is
the regular (dilated) grid tap plus the learned offset, which is read off the offset field
by bilinear interpolation at the fractional point.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def _interp_offsets(field: torch.Tensor, points: np.ndarray) -> np.ndarray:
    """Offsets [n, 9, 2] (dy, dx) of ``field`` [18, H, W] at fractional (y, x) points."""
    h, w = field.shape[1:]
    grid = torch.as_tensor(points[:, ::-1].copy(), dtype=torch.float32)  # (x, y)
    grid = torch.stack([grid[:, 0] / max(w - 1, 1) * 2 - 1, grid[:, 1] / max(h - 1, 1) * 2 - 1], 1)
    sampled = F.grid_sample(field[None], grid[None, :, None], align_corners=True)[0, :, :, 0]  # [18, n]
    return sampled.t().reshape(-1, 9, 2).numpy()


def sampling_points(fields: Sequence, start: Tuple[float, float], dilation: int = 1) -> np.ndarray:
    """Feature-map (y, x) sampling points of the stack for the top-layer point ``start``."""
    taps = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=np.float32) * dilation
    points = np.array([start], dtype=np.float32)
    for field in reversed(fields):  # top layer first
        grid = points[:, None, :] + taps[None]
        if field is not None:
            grid = grid + _interp_offsets(field, points)
        points = grid.reshape(-1, 2)
    return points


def to_image(points: np.ndarray, stride: int) -> np.ndarray:
    """Feature-map (y, x) to image (x, y) at the centre of the feature cell."""
    return (points[:, ::-1] + 0.5) * stride - 0.5


STAGE = "res4"  # stride 16: the finest stage whose last blocks are all deformable in the demo configs


def _bottom_up(model):
    backbone = model.backbone
    return getattr(backbone, "bottom_up", backbone)


def deformable_stage(model, layers: int = 3) -> Optional[str]:
    """The backbone stage to follow: :data:`STAGE` when one of its last ``layers`` blocks is
    deformable, else the deepest stage with one; None for a model without deformable convs."""
    from dcn_det.modeling.backbone import DeformBottleneck

    resnet = _bottom_up(model)
    found = [name for name in ("res2", "res3", "res4", "res5")
             if any(isinstance(b, DeformBottleneck) for b in list(getattr(resnet, name, []))[-layers:])]
    if STAGE in found:
        return STAGE
    return found[-1] if found else None


@dataclass
class OffsetFields:
    """The offset fields of the last blocks of one stage, from one forward pass: each
    [2*9, H, W] as (dy, dx) per tap (``deform_conv2d``'s layout), None for a plain block."""

    fields: List[Optional[torch.Tensor]]
    stride: int
    dilation: int

    def _unit(self, center_xy: Tuple[float, float]) -> Tuple[int, int]:
        """Feature-map (y, x) of the top-layer unit nearest the input-image (x, y) ``center_xy``."""
        s = self.stride
        return round((center_xy[1] + 0.5) / s - 0.5), round((center_xy[0] + 0.5) / s - 0.5)

    def points(self, center_xy: Tuple[float, float]) -> np.ndarray:
        """Input-image (x, y) points sampled for the top-layer unit nearest ``center_xy``."""
        return to_image(sampling_points(self.fields, self._unit(center_xy), self.dilation), self.stride)

    def unit_center(self, center_xy: Tuple[float, float]) -> Tuple[float, float]:
        """Input-image (x, y) of that top-layer unit."""
        s = self.stride
        y, x = self._unit(center_xy)
        return (x + 0.5) * s - 0.5, (y + 0.5) * s - 0.5


@contextmanager
def recording_offsets(model, stage: str = STAGE, layers: int = 3) -> Iterator[OffsetFields]:
    """Within the block, a forward pass of ``model`` (batch of one) fills the yielded
    :class:`OffsetFields` of the last ``layers`` blocks of ``stage``."""
    from dcn_det.modeling.backbone import DeformBottleneck

    resnet = _bottom_up(model)
    blocks = list(getattr(resnet, stage))[-layers:]
    dilation = blocks[-1].conv2.dilation[0] if hasattr(blocks[-1].conv2, "dilation") else 1
    record = OffsetFields([None] * len(blocks), resnet.output_shape()[stage].stride, dilation)
    hooks = []
    for i, block in enumerate(blocks):
        if isinstance(block, DeformBottleneck):
            def hook(module, inputs, output, i=i):
                # The first 2*9 channels are the offsets (the rest, if any, the DCNv2 mask).
                record.fields[i] = output[0, : 2 * 9].detach().float().cpu()

            hooks.append(block.conv2_offset.register_forward_hook(hook))
    try:
        yield record
    finally:
        for h in hooks:
            h.remove()


def input_at_size(image_bgr: np.ndarray) -> Dict:
    """detectron2's model input for one BGR image fed as it is (its own size, channel order
    and pixel values; no test-time resize), for the figures that draw on that image."""
    image = torch.as_tensor(image_bgr.astype("float32").transpose(2, 0, 1))
    return {"image": image, "height": image_bgr.shape[0], "width": image_bgr.shape[1]}


def capture_offsets(model, image_bgr: np.ndarray, stage: str = STAGE, layers: int = 3) -> Tuple[OffsetFields, List[Dict]]:
    """Run the model on one image at its size; return (the :class:`OffsetFields` of the last
    ``layers`` blocks of ``stage``, the model outputs)."""
    with recording_offsets(model, stage, layers) as record, torch.no_grad():
        outputs = model([input_at_size(image_bgr)])
    return record, outputs
