"""The study's digits: MNIST-style glyphs (generated or read from IDX files) and the three
placements on the canvas."""
import os

import numpy as np
import pytest
import torch

from dcn_det.classification import digits


def _ink_box(image, threshold=0.3):
    ys, xs = np.nonzero(np.asarray(image) > threshold)
    return ys.min(), ys.max(), xs.min(), xs.max()


def _centre_of_mass(image):
    image = np.asarray(image, dtype=np.float64)
    total = image.sum()
    return ((image.sum(1) * np.arange(image.shape[0])).sum() / total,
            (image.sum(0) * np.arange(image.shape[1])).sum() / total)


def test_generated_glyphs_are_normalised_like_mnist_balanced_and_seeded():
    glyphs, labels = digits.generated_glyphs(50, seed=3)
    assert glyphs.shape == (50, 28, 28) and glyphs.dtype == np.float32 and labels.dtype == np.int64
    assert sorted(np.bincount(labels, minlength=10).tolist()) == [5] * 10
    assert 0.0 <= glyphs.min() and glyphs.max() <= 1.0
    for glyph in glyphs:
        y0, y1, x0, x1 = _ink_box(glyph, 0.05)
        assert 18 <= max(y1 - y0, x1 - x0) + 1 <= 22  # longer side 20 px (anti-aliased edge)
        cy, cx = _centre_of_mass(glyph)
        assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0
    again, again_labels = digits.generated_glyphs(50, seed=3)
    np.testing.assert_array_equal(glyphs, again)
    np.testing.assert_array_equal(labels, again_labels)
    other, _ = digits.generated_glyphs(50, seed=4)
    assert not np.array_equal(glyphs, other)


def test_in_range_placement_centres_the_glyph_unscaled():
    glyphs, _ = digits.generated_glyphs(10, seed=0)
    placed = digits.place(glyphs, "in_range", seed=0)
    assert placed.shape == (10, 1, digits.CANVAS, digits.CANVAS) and placed.dtype == torch.float32
    offset = digits.CANVAS // 2 - digits.GLYPH // 2
    np.testing.assert_allclose(placed[:, 0, offset:offset + 28, offset:offset + 28].numpy(), glyphs, atol=1e-6)
    assert float(placed.sum()) == pytest.approx(float(glyphs.sum()), rel=1e-5)  # nothing outside


def test_scaled_placement_scales_within_range_and_keeps_the_digit_on_the_canvas():
    glyphs, _ = digits.generated_glyphs(200, seed=1)
    placed = digits.place(glyphs, "scaled", seed=5).numpy()[:, 0]
    ratios = []
    for glyph, image in zip(glyphs, placed):
        ratios.append(np.sqrt(image.sum() / glyph.sum()))  # ink area grows with scale^2
        y0, y1, x0, x1 = _ink_box(image, 0.05)
        assert y0 > 0 and x0 > 0 and y1 < digits.CANVAS - 1 and x1 < digits.CANVAS - 1
    assert 0.45 < min(ratios) < 0.6 and 1.4 < max(ratios) < 1.55
    centres = np.array([_centre_of_mass(image) for image in placed])
    assert centres.std(0).min() > 2.0  # translated, not all centred


def test_rotated_placement_keeps_scale_and_centre_and_rotates_up_to_45_degrees():
    glyph = np.zeros((28, 28), np.float32)
    glyph[4:24, 13:15] = 1.0  # a vertical bar: its orientation is the rotation
    placed = digits.place(np.repeat(glyph[None], 300, 0), "rotated", seed=2).numpy()[:, 0]
    angles = []
    for image in placed:
        assert float(image.sum()) == pytest.approx(float(glyph.sum()), rel=0.05)  # bilinear resampling loses a little
        cy, cx = _centre_of_mass(image)
        assert abs(cy - 19.5) < 0.3 and abs(cx - 19.5) < 0.3
        ys, xs = np.nonzero(image > 0.5)
        cov = np.cov(np.stack([xs, ys]).astype(np.float64))
        vx, vy = np.linalg.eigh(cov)[1][:, -1]  # the bar's long axis
        angles.append(np.degrees(np.arctan2(abs(vx), abs(vy))))
    assert max(angles) < 47 and max(angles) > 40 and min(angles) < 5


def test_place_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="split must be one of"):
        digits.place(np.zeros((1, 28, 28), np.float32), "sheared", seed=0)


def _write_idx(path, array, magic):
    with open(path, "wb") as f:
        f.write(magic.to_bytes(4, "big"))
        for size in array.shape:
            f.write(int(size).to_bytes(4, "big"))
        f.write(array.astype(np.uint8).tobytes())


def test_mnist_glyphs_reads_the_idx_files_without_downloading(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 12)):
        images = rng.integers(0, 256, (n, 28, 28))
        labels = np.arange(n) % 10
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images, 2051)  # as torchvision unpacks them
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, 2049)
        if prefix == "t10k":
            test_images, test_labels = images, labels
    glyphs, labels = digits.mnist_glyphs(str(tmp_path), train=False, count=12, seed=0)
    assert glyphs.shape == (12, 28, 28) and glyphs.dtype == np.float32 and labels.dtype == np.int64
    # the test file's digits (all 12, in a seeded order), scaled to [0, 1], each with its label
    found = {int(np.argmin(np.abs(test_images.reshape(12, -1) / 255 - g.reshape(1, -1)).sum(1))): int(lab)
             for g, lab in zip(glyphs, labels)}
    assert sorted(found) == list(range(12)) and all(test_labels[i] == lab for i, lab in found.items())
    np.testing.assert_allclose(glyphs[0], test_images[next(iter(found))] / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="the file has 30"):
        digits.mnist_glyphs(str(tmp_path), train=True, count=31, seed=0)


def test_mnist_glyphs_names_the_option_and_the_files_when_they_are_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="--mnist-root") as info:
        digits.mnist_glyphs(str(tmp_path), train=True, count=10, seed=0)
    assert os.path.join(str(tmp_path), "MNIST", "raw") in str(info.value)
