"""dcn_det.convert.convert_mxnet_params: the name mapping and its transforms on small hand-made
tensors, and the one-line errors (the whole networks: tests/verify_mxnet/)."""
import numpy as np
import pytest

from dcn_det.convert import ConversionError, convert_mxnet_params
from dcn_det.convert.mxnet_to_detectron2 import block_index

RNG = np.random.default_rng(0)


def _a(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def test_block_names():
    assert [block_index(b) for b in ("a", "b", "f", "b1", "b22")] == [0, 1, 5, 1, 22]
    with pytest.raises(ConversionError, match="block name"):
        block_index("B3")


def test_backbone_and_batch_norm_names():
    params = {"arg:conv1_weight": _a(8, 3, 7, 7), "arg:bn_conv1_gamma": _a(8), "aux:bn_conv1_moving_var": _a(8),
              "arg:res4b22_branch2b_weight": _a(4, 4, 3, 3), "arg:res5a_branch2b_offset_bias": _a(72),
              "aux:bn3c_branch1_moving_mean": _a(16)}
    shapes = {"backbone.stem.conv1.weight": (8, 3, 7, 7), "backbone.stem.conv1.norm.weight": (8,),
              "backbone.stem.conv1.norm.running_var": (8,), "backbone.res4.22.conv2.weight": (4, 4, 3, 3),
              "backbone.res5.0.conv2_offset.bias": (72,), "backbone.res3.2.shortcut.norm.running_mean": (16,)}
    out = convert_mxnet_params(params, shapes)
    assert set(out) == set(shapes)
    np.testing.assert_array_equal(out["backbone.res4.22.conv2.weight"].numpy(), params["arg:res4b22_branch2b_weight"])
    np.testing.assert_array_equal(out["backbone.stem.conv1.norm.running_var"].numpy(), params["aux:bn_conv1_moving_var"])


def test_rpn_softmax_pair_becomes_fg_minus_bg():
    w, b = _a(6, 4, 1, 1), _a(6)  # 3 anchors: bg block, fg block
    out = convert_mxnet_params({"rpn_cls_score_weight": w, "rpn_cls_score_bias": b},
                               {"proposal_generator.rpn_head.objectness_logits.weight": (3, 4, 1, 1),
                                "proposal_generator.rpn_head.objectness_logits.bias": (3,)})
    np.testing.assert_allclose(out["proposal_generator.rpn_head.objectness_logits.weight"].numpy(), w[3:] - w[:3])
    # The logit fg - bg gives the softmax's foreground probability.
    x = _a(4)
    pair = np.array([w[:3, :, 0, 0] @ x + b[:3], w[3:, :, 0, 0] @ x + b[3:]])
    softmax_fg = np.exp(pair[1]) / np.exp(pair).sum(0)
    logit = out["proposal_generator.rpn_head.objectness_logits.weight"].numpy()[:, :, 0, 0] @ x + \
        out["proposal_generator.rpn_head.objectness_logits.bias"].numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), softmax_fg, rtol=1e-5)


def test_rfcn_head_moves_background_last_and_keeps_foreground_boxes():
    k2, classes = 4, 3  # k = 2; 2 classes + background
    params = {"rfcn_cls_weight": _a(classes * k2, 5, 1, 1), "rfcn_bbox_weight": _a(8 * k2, 5, 1, 1),
              "rfcn_bbox_weight_test": _a(8 * k2, 5, 1, 1), "rfcn_cls_offset_t_bias": _a(2 * classes * k2)}
    shapes = {"roi_heads.rfcn_cls.weight": (classes * k2, 5, 1, 1), "roi_heads.rfcn_bbox.weight": (4 * k2, 5, 1, 1),
              "roi_heads.cls_pool.conv_offset.bias": (2 * classes * k2,)}
    out = convert_mxnet_params(params, shapes)
    cls = params["rfcn_cls_weight"]
    np.testing.assert_array_equal(out["roi_heads.rfcn_cls.weight"].numpy(), np.concatenate([cls[k2:], cls[:k2]]))
    # The *_test tensor wins over the plain one; the foreground half of (bg 4, fg 4) x k^2.
    np.testing.assert_array_equal(out["roi_heads.rfcn_bbox.weight"].numpy(), params["rfcn_bbox_weight_test"][4 * k2:])
    off = params["rfcn_cls_offset_t_bias"]
    np.testing.assert_array_equal(out["roi_heads.cls_pool.conv_offset.bias"].numpy(),
                                  np.concatenate([off[2 * k2:], off[:2 * k2]]))


def test_faster_rcnn_head():
    params = {"conv_new_1_weight": _a(6, 8, 1, 1), "offset_weight": _a(98, 6 * 49), "fc_new_2_bias": _a(16),
              "cls_score_bias": _a(4), "bbox_pred_bias_test": _a(16), "bbox_pred_bias": _a(16)}
    shapes = {"roi_heads.box_reduce.weight": (6, 8, 1, 1), "roi_heads.box_pooler.pooler.pool.offset_fc.0.weight":
              (98, 6 * 49), "roi_heads.box_head.fc2.bias": (16,), "roi_heads.box_predictor.cls_score.bias": (4,),
              "roi_heads.box_predictor.bbox_pred.bias": (12,)}
    out = convert_mxnet_params(params, shapes)
    s = params["cls_score_bias"]
    np.testing.assert_array_equal(out["roi_heads.box_predictor.cls_score.bias"].numpy(), np.concatenate([s[1:], s[:1]]))
    np.testing.assert_array_equal(out["roi_heads.box_predictor.bbox_pred.bias"].numpy(), params["bbox_pred_bias_test"][4:])


@pytest.mark.parametrize("params,shapes,message", [
    ({"conv1_weight": _a(2, 3, 1, 1), "fancy_layer_weight": _a(2)}, {"backbone.stem.conv1.weight": (2, 3, 1, 1)},
     r"1 tensor\(s\) of the file are not used by the model: fancy_layer_weight"),
    ({"conv1_weight": _a(2, 3, 1, 1)}, {"backbone.stem.conv1.weight": (2, 3, 1, 1), "roi_heads.x.weight": (1,)},
     r"1 model tensor\(s\) get no value from the file: roi_heads.x.weight"),
    ({"conv1_weight": _a(2, 3, 1, 1)}, {"backbone.stem.conv1.weight": (4, 3, 1, 1)},
     r"conv1_weight: shape \(2, 3, 1, 1\) becomes \(2, 3, 1, 1\), but the model's backbone.stem.conv1.weight is "
     r"\(4, 3, 1, 1\)"),
    ({"res2a_branch2b_weight": _a(1)}, {}, r"not in the model"),
    ({"rfcn_cls_weight": _a(4)}, {}, "no R-FCN head"),
    ({"offset_weight": _a(4)}, {}, "deformable RoI pooling offset fc"),
])
def test_errors_are_one_line(params, shapes, message):
    with pytest.raises(ConversionError, match=message) as info:
        convert_mxnet_params(params, shapes)
    assert "\n" not in str(info.value)
