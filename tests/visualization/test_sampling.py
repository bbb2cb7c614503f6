"""dcn_det.visualization: the sampling points of a stack of 3x3 (deformable) convs, checked
against points written out tap by tap."""
import itertools

import numpy as np
import pytest
import torch

from dcn_det.visualization import sampling_points, to_image

TAPS = list(itertools.product((-1, 0, 1), (-1, 0, 1)))  # (dy, dx), the offset channel order


@pytest.mark.parametrize("dilation", [1, 2])
def test_plain_layers_give_the_regular_dilated_grid(dilation):
    points = sampling_points([None, None], (5.0, 7.0), dilation)
    expected = sorted((5 + dilation * (a + c), 7 + dilation * (b + d)) for a, b in TAPS for c, d in TAPS)
    assert sorted(map(tuple, points.tolist())) == expected


def test_constant_offsets_shift_every_tap_of_every_layer():
    # Every tap of the top layer moved by (dy, dx) = (0.5, -0.25) per tap index, and the lower
    # layer by its own constant field: points = start + tap1 + off1[tap1] + tap2 + off2[tap2].
    rng = np.random.default_rng(0)
    off_top, off_low = rng.uniform(-1, 1, (9, 2)), rng.uniform(-1, 1, (9, 2))

    def field(off):  # [18, H, W] with (dy, dx) of tap t in channels 2t, 2t+1
        return torch.tensor(off.reshape(18), dtype=torch.float32)[:, None, None].expand(18, 20, 20).contiguous()

    points = sampling_points([field(off_low), field(off_top)], (10.0, 10.0))
    expected = [(10 + a + off_top[i, 0] + c + off_low[j, 0], 10 + b + off_top[i, 1] + d + off_low[j, 1])
                for i, (a, b) in enumerate(TAPS) for j, (c, d) in enumerate(TAPS)]
    np.testing.assert_allclose(points, np.array(expected), atol=1e-5)


def test_offsets_are_read_at_fractional_points_by_bilinear_interpolation():
    # A field that grows linearly in x: dy of every tap = 0.1 * x; the top layer's points sit
    # at fractional x after its own offsets, and the lower layer reads dy there.
    h = w = 16
    xs = torch.arange(w, dtype=torch.float32)
    f = torch.zeros(18, h, w)
    f[0::2] = 0.1 * xs  # dy
    f[1::2] = 0.3  # dx, constant: the top layer's points land at x = 8 + tap + 0.3
    points = sampling_points([f, f], (8.0, 8.0))
    for (a, b), block in zip(TAPS, points.reshape(9, 9, 2)):
        y1, x1 = 8 + a + 0.1 * 8, 8 + b + 0.3
        for (c, d), (y, x) in zip(TAPS, block):
            assert y == pytest.approx(y1 + c + 0.1 * x1, abs=1e-5)
            assert x == pytest.approx(x1 + d + 0.3, abs=1e-5)


def test_to_image_maps_cell_centres_to_pixels_and_swaps_to_xy():
    pts = np.array([[0.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(to_image(pts, 4), [[1.5, 1.5], [9.5, 5.5]])
