"""Where deformable layers sample: the geometry behind the pictures of ``tools/visualize_dcn.py``
and the demo's figures (torch and numpy only).

A stack of 3x3 deformable convolutions at one stride samples, for one output unit of the
top layer, 9 points in the layer below, 81 in the one below that, and so on; each point is
the regular (dilated) grid tap plus the learned offset, which is read off the offset field
by bilinear interpolation at the fractional point.
"""
from typing import Sequence, Tuple

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
