"""Digits for the classification study: generated glyphs (no download), or real MNIST.

Both sources give MNIST-style glyphs: 28x28, the digit scaled so that its longer side is
20 px and placed with its centre of mass at the centre (MNIST's own normalisation). A
*split* then places each glyph on a larger canvas (CANVAS x CANVAS) with an affine map:

- ``in_range``: scale 1, no rotation, centred: the one scale and position of training;
- ``scaled``: scale uniform in [0.5, 1.5] and a translation uniform over the positions
  that keep the digit on the canvas;
- ``rotated``: rotation uniform in [-45, 45] degrees, scale 1, centred.

Generated glyphs: OpenCV's Hershey fonts (upright and italic), random stroke width, and a
random shear / aspect / small rotation of the rendered digit, so that no two are alike.
"""
import math
import os
from typing import Optional, Tuple

import cv2
import numpy as np
import torch

CANVAS = 40  # a 1.5x digit (30 px) fits, with room to translate a small one
GLYPH = 28
SPLITS = ("in_range", "scaled", "rotated")
SCALE_RANGE = (0.5, 1.5)
ROTATION_RANGE = 45.0  # degrees, either way

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)
_RENDER = 96  # the digit is drawn this large, jittered, then normalised down to 28x28


def _normalise(image: np.ndarray) -> Optional[np.ndarray]:
    """MNIST's normalisation: longer side of the ink's bounding box to 20 px, centre of
    mass at (14, 14) of a 28x28 glyph; values in [0, 1]. None for an empty image."""
    ys, xs = np.nonzero(image > 0.05)
    if len(ys) == 0:
        return None
    crop = image[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    scale = 20.0 / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    total = float(small.sum())
    cy = float((small.sum(1) * np.arange(h)).sum()) / total
    cx = float((small.sum(0) * np.arange(w)).sum()) / total
    shift = np.float32([[1, 0, GLYPH / 2 - 0.5 - cx], [0, 1, GLYPH / 2 - 0.5 - cy]])
    return np.clip(cv2.warpAffine(small, shift, (GLYPH, GLYPH), flags=cv2.INTER_LINEAR), 0.0, 1.0)


def render_glyph(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One generated 28x28 glyph of ``digit`` (float32 in [0, 1])."""
    while True:
        font = _FONTS[rng.integers(len(_FONTS))] | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
        thickness = int(rng.integers(3, 10))
        canvas = np.zeros((_RENDER, _RENDER), np.uint8)
        (tw, th), _ = cv2.getTextSize(str(digit), font, 2.0, thickness)
        origin = ((_RENDER - tw) // 2, (_RENDER + th) // 2)
        cv2.putText(canvas, str(digit), origin, font, 2.0, 255, thickness, cv2.LINE_AA)
        # Shape jitter: shear, aspect and a small rotation about the centre.
        angle = math.radians(rng.uniform(-12, 12))
        shear, aspect = rng.uniform(-0.3, 0.3), rng.uniform(0.75, 1.25)
        a = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        a = a @ np.array([[aspect, shear], [0.0, 1.0]])
        c = np.array([_RENDER / 2, _RENDER / 2])
        m = np.hstack([a, (c - a @ c)[:, None]]).astype(np.float32)
        warped = cv2.warpAffine(canvas, m, (_RENDER, _RENDER), flags=cv2.INTER_LINEAR).astype(np.float32) / 255
        glyph = _normalise(warped)
        if glyph is not None:
            return glyph.astype(np.float32)


def generated_glyphs(count: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """``count`` generated glyphs [count, 28, 28] and their labels (balanced, shuffled)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % 10)
    return np.stack([render_glyph(int(d), rng) for d in labels]), labels.astype(np.int64)


def mnist_glyphs(root: str, train: bool, count: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """``count`` MNIST digits (a seeded random subset) from the IDX files under ``root``,
    read with torchvision's MNIST class (never downloads)."""
    from torchvision.datasets import MNIST

    try:
        data = MNIST(root, train=train, download=False)
    except RuntimeError as e:  # torchvision: "Dataset not found. You can use download=True ..."
        raise FileNotFoundError(
            f"--mnist-root {root!r}: no MNIST IDX files found there (torchvision looks for "
            f"{os.path.join(root, 'MNIST', 'raw')}/{{train,t10k}}-images-idx3-ubyte): {e}"
        ) from e
    if count > len(data):
        raise ValueError(f"asked for {count} MNIST {'training' if train else 'test'} digits, the file has {len(data)}")
    index = np.random.default_rng(seed).permutation(len(data))[:count]
    images = data.data.numpy()[index].astype(np.float32) / 255
    return images, data.targets.numpy()[index].astype(np.int64)


def _shift_range(glyph: np.ndarray, scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """(low, high) (x, y) translations that keep the ink of ``glyph``, scaled about the glyph
    centre and centred on the canvas, at least 1 px inside the canvas."""
    ys, xs = np.nonzero(glyph > 0.01)
    centre, offset = GLYPH / 2 - 0.5, CANVAS / 2 - GLYPH / 2
    lo = np.array([xs.min(), ys.min()], np.float64) - 1  # bilinear: a pixel's ink reaches 1 px
    hi = np.array([xs.max(), ys.max()], np.float64) + 1
    low = 1 - (offset + centre + scale * (lo - centre))
    high = CANVAS - 2 - (offset + centre + scale * (hi - centre))
    mid = (low + high) / 2
    return np.minimum(low, mid), np.maximum(high, mid)


def place(glyphs: np.ndarray, split: str, seed: int) -> torch.Tensor:
    """Put 28x28 glyphs on the CANVAS x CANVAS canvas as ``split`` says; [N, 1, CANVAS, CANVAS]."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng(seed)
    out = np.empty((len(glyphs), CANVAS, CANVAS), np.float32)
    for i, glyph in enumerate(glyphs):
        scale, angle, shift = 1.0, 0.0, np.zeros(2)
        if split == "scaled":
            scale = rng.uniform(*SCALE_RANGE)
            shift = rng.uniform(*_shift_range(glyph, scale))
        elif split == "rotated":
            angle = rng.uniform(-ROTATION_RANGE, ROTATION_RANGE)
        m = cv2.getRotationMatrix2D((GLYPH / 2 - 0.5, GLYPH / 2 - 0.5), angle, scale)
        m[:, 2] += CANVAS / 2 - GLYPH / 2 + shift
        out[i] = cv2.warpAffine(glyph, m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR)
    return torch.from_numpy(out)[:, None]


def placed_glyph(glyph: np.ndarray, scale: float) -> torch.Tensor:
    """One glyph centred on the canvas at ``scale`` (for the sampling figure); [1, 1, C, C]."""
    m = cv2.getRotationMatrix2D((GLYPH / 2 - 0.5, GLYPH / 2 - 0.5), 0.0, scale)
    m[:, 2] += CANVAS / 2 - GLYPH / 2
    return torch.from_numpy(cv2.warpAffine(glyph, m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR))[None, None]
