"""dcn_det.visualization, deformable RoI pooling picture: the bin geometry follows the
operator's semantics (regular bins for zero offsets, offset * trans_std * RoI size pixels
otherwise, the same place the operator samples), offsets are captured from real models, and
the figure is drawn."""
from pathlib import Path

import numpy as np
import pytest
import torch

from dcn_det.engine import build_cfg
from dcn_det import visualization as vis
from dcn_det.visualization import drawing
from dcn_det.ops import deform_psroi_pool


CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "Demo"
BOX = (20.3, 31.7, 89.6, 70.2)  # rounded: x 20..90 (width 71 px), y 32..71 (height 39 px)


def test_zero_offsets_give_the_regular_bins():
    regular, displaced = vis.bin_rectangles(BOX, np.zeros((2, 7, 7)), 0.1, 7)
    np.testing.assert_array_equal(displaced, regular)
    assert regular.shape == (7, 7, 4)
    np.testing.assert_allclose(regular[0, 0], (20, 32, 20 + 71 / 7, 32 + 39 / 7))
    np.testing.assert_allclose(regular[6, 6, 2:], (91, 71))  # the RoI ends at round(x2) + 1
    np.testing.assert_allclose(regular[0, 1, 0] - regular[0, 0, 0], 71 / 7)


def test_known_offset_moves_each_bin_by_offset_times_trans_std_times_roi_size():
    offset = np.zeros((2, 7, 7))
    offset[0, 2, 3] = 1.0  # dx of bin (row 2, column 3)
    offset[1, 2, 3] = -0.5  # dy
    offset[0, 6, 0] = -2.0
    regular, displaced = vis.bin_rectangles(BOX, offset, 0.1, 7)
    shift = displaced - regular
    np.testing.assert_allclose(shift[2, 3], (7.1, -1.95, 7.1, -1.95))  # 1 * 0.1 * 71 px, -0.5 * 0.1 * 39 px
    np.testing.assert_allclose(shift[6, 0], (-14.2, 0, -14.2, 0))
    moved = np.zeros((7, 7), bool)
    moved[2, 3] = moved[6, 0] = True
    assert not shift[~moved].any()


def test_coarser_offset_parts_move_groups_of_bins():
    offset = np.zeros((2, 2, 2))
    offset[0, 1, 1] = 0.5  # part (1, 1) covers bins 4..6 of 7 (floor(p / 7 * 2))
    regular, displaced = vis.bin_rectangles(BOX, offset, 0.2, 7)
    moved = (displaced - regular)[..., 0]
    np.testing.assert_allclose(moved[4:, 4:], 0.5 * 0.2 * 71)
    assert not moved[:4].any() and not moved[:, :4].any()


@pytest.mark.parametrize("spatial_scale", [1.0, 0.5])
def test_displaced_bins_are_where_the_operator_samples(spatial_scale):
    # On a ramp feature map (value = feature-map x, resp. y) a bin's pooled value is the mean x
    # (y) of its samples, which lie at start + i * bin / n for i < n: compare with the drawn bin.
    h = w = 96
    ramp = torch.stack([torch.arange(w, dtype=torch.float64).expand(h, w), torch.arange(h, dtype=torch.float64)[:, None].expand(h, w)])
    offset = torch.tensor(np.random.default_rng(0).uniform(-1, 1, (1, 2, 7, 7)))
    rois = torch.tensor([[0.0, *BOX]], dtype=torch.float64)
    n = 4
    pooled = deform_psroi_pool(ramp[None], rois, offset, spatial_scale, 2, 1, 7, 7, n, 0.1)[0].numpy()
    _, displaced = vis.bin_rectangles(BOX, offset[0].numpy(), 0.1, 7, spatial_scale)
    fraction = (n - 1) / (2 * n)
    mean_x = displaced[..., 0] + fraction * (displaced[..., 2] - displaced[..., 0])
    mean_y = displaced[..., 1] + fraction * (displaced[..., 3] - displaced[..., 1])
    # feature coordinate f <-> image coordinate (f + 0.5) / spatial_scale
    np.testing.assert_allclose((pooled[0] + 0.5) / spatial_scale, mean_x, atol=1e-6)
    np.testing.assert_allclose((pooled[1] + 0.5) / spatial_scale, mean_y, atol=1e-6)


def test_bad_offset_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\[2, S, S\]"):
        vis.bin_rectangles(BOX, np.zeros((7, 7)), 0.1, 7)


def _model(config):
    from detectron2.modeling import build_model

    torch.manual_seed(0)
    return build_model(build_cfg(str(CONFIGS / config), ["MODEL.DEVICE", "cpu"])).eval()


def _image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)


GT = [(10.0, 12.0, 60.0, 70.0), (70.0, 20.0, 120.0, 50.0)]


def test_faster_rcnn_offsets_are_captured_zero_at_init_then_the_branch_output():
    model = _model("faster_rcnn_dcnv2.yaml")
    items = vis.pooling_offsets(model, _image(), 2, GT)
    assert 1 <= len(items) <= 2
    for item in items:
        assert item.offset.shape == (2, 7, 7) and not item.offset.any()  # zero-initialised branch
        np.testing.assert_allclose(item.mask, 0.5)
        assert item.trans_std == 0.1 and item.pooled_size == 7
    last = model.roi_heads.box_pooler.pool.offset_fc[-1]
    with torch.no_grad():
        last.bias[:49] = 0.3  # dx (weights stay zero: the offset is the bias for any box)
        last.bias[49:] = -0.2  # dy
    item = vis.pooling_offsets(model, _image(), 1, GT)[0]
    np.testing.assert_allclose(item.offset[0], 0.3, rtol=1e-6)
    np.testing.assert_allclose(item.offset[1], -0.2, rtol=1e-6)
    regular, displaced = vis.bin_rectangles(item.box, item.offset, item.trans_std, 7, item.spatial_scale)
    width = np.floor(item.box[2] + 0.5) + 1 - np.floor(item.box[0] + 0.5)
    np.testing.assert_allclose((displaced - regular)[..., 0], 0.3 * 0.1 * width, rtol=1e-5)


def test_rfcn_offsets_come_from_the_detected_class_field():
    model = _model("rfcn_dcnv2.yaml")
    pool = model.roi_heads.cls_pool
    k2 = pool.group_size ** 2
    with torch.no_grad():  # class c's (dx, dy) are channels 2c, 2c+1 of each position-sensitive group
        bias = pool.conv_offset.bias.view(-1, k2)
        bias[: 2 * pool.num_offset_classes : 2] = 0.4
        bias[1 : 2 * pool.num_offset_classes : 2] = -0.1
    items = vis.pooling_offsets(model, _image(), 1, GT)
    np.testing.assert_allclose(items[0].offset[0], 0.4, rtol=1e-5)
    np.testing.assert_allclose(items[0].offset[1], -0.1, rtol=1e-5)
    assert items[0].mask.shape == (7, 7)


def test_model_without_deformable_pooling_is_rejected_with_a_clear_message():
    model = _model("faster_rcnn_plain.yaml")
    assert not vis.has_deformable_pooling(model)
    with pytest.raises(ValueError, match="no deformable RoI pooling"):
        vis.pooling_offsets(model, _image(), 1, GT)
    with pytest.raises(ValueError, match="none of the models"):
        vis.pooling_figure([("plain", model)], _image(), 1, GT)


def test_pooling_figure_has_one_row_per_deformable_model_and_a_panel_per_box():
    models = [("plain", _model("faster_rcnn_plain.yaml")), ("dcnv2", _model("faster_rcnn_dcnv2.yaml"))]
    figure = vis.pooling_figure(models, _image(), 2, GT)
    assert figure.dtype == np.uint8 and figure.ndim == 3
    assert figure.shape[0] < 2 * drawing._PANEL  # the plain model has no row
    assert figure.shape[1] >= 2 * drawing._PANEL and figure.std() > 10
