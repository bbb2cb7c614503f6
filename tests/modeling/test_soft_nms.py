"""Soft-NMS (dcn_det.modeling.soft_nms; MODEL.ROI_HEADS.SOFT_NMS_*): against a plain-Python
transcription of Bodla et al.'s loop (Gaussian and linear, with and without the +1 IoU); its
"hard" rule against torchvision's NMS; and SoftNMSOutputLayers' "hard" inference against
detectron2's own Fast R-CNN inference (same detections)."""
import math

import pytest
import torch
import torchvision
from detectron2.layers import ShapeSpec
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.roi_heads.fast_rcnn import fast_rcnn_inference
from detectron2.structures import Boxes, Instances

from dcn_det.modeling import SoftNMSOutputLayers, soft_nms


def _reference(boxes, scores, method, sigma, nt, threshold, plus_one):
    """Bodla et al.'s cpu_soft_nms, in lists: pick the best, decay the rest, drop the low."""
    one = 1.0 if plus_one else 0.0
    items = [(list(map(float, b)), float(s), i) for i, (b, s) in enumerate(zip(boxes, scores))]
    keep = []
    while items:
        best = max(range(len(items)), key=lambda k: items[k][1])
        box, score, index = items.pop(best)
        keep.append((index, score))
        rest = []
        for other, s, j in items:
            w = max(0.0, min(box[2], other[2]) - max(box[0], other[0]) + one)
            h = max(0.0, min(box[3], other[3]) - max(box[1], other[1]) + one)
            inter = w * h
            union = (box[2] - box[0] + one) * (box[3] - box[1] + one) + (other[2] - other[0] + one) * (other[3] - other[1] + one) - inter
            iou = inter / union
            if method == "gaussian":
                s *= math.exp(-iou * iou / sigma)
            elif method == "linear":
                s *= (1 - iou) if iou > nt else 1.0
            if s >= threshold:
                rest.append((other, s, j))
        items = rest
    return [k for k, _ in keep], [s for _, s in keep]


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 60
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 40 + 5
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("method, sigma", [("gaussian", 0.6), ("gaussian", 0.3), ("linear", 0.5)])
@pytest.mark.parametrize("plus_one", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_soft_nms_is_bodlas_loop(method, sigma, plus_one, seed):
    boxes, scores = _boxes(40, seed)
    kept, decayed = soft_nms(boxes, scores, method, sigma, 0.3, 0.001, plus_one)
    want_kept, want_scores = _reference(boxes, scores, method, sigma, 0.3, 0.001, plus_one)
    assert kept.tolist() == want_kept
    torch.testing.assert_close(decayed, torch.tensor(want_scores, dtype=torch.float64))
    assert len(want_kept) > 10  # soft: far more survive than under NMS


@pytest.mark.parametrize("seed", [0, 3])
def test_hard_rule_is_nms(seed):
    boxes, scores = _boxes(60, seed)
    kept, decayed = soft_nms(boxes, scores, "hard", iou_threshold=0.4, score_threshold=0.0)
    assert kept.tolist() == torchvision.ops.nms(boxes, scores, 0.4).tolist()
    torch.testing.assert_close(decayed, scores[kept])


def test_bad_method_is_named():
    with pytest.raises(ValueError, match="method must be one of"):
        soft_nms(*_boxes(3, 0), method="box")


def test_hard_inference_is_detectron2s():
    torch.manual_seed(0)
    num_classes, rois = 4, 50
    layers = SoftNMSOutputLayers(ShapeSpec(channels=8), box2box_transform=Box2BoxTransform((10.0, 10.0, 5.0, 5.0)),
                                 num_classes=num_classes, test_score_thresh=0.05, test_nms_thresh=0.5,
                                 test_topk_per_image=30, soft_nms_method="hard", soft_nms_prune=0.0)
    boxes, _ = _boxes(rois, 5)
    proposals = Instances((120, 110), proposal_boxes=Boxes(boxes.float()))
    predictions = (torch.randn(rois, num_classes + 1) * 2, torch.randn(rois, 4 * num_classes) * 0.3)
    (got,), (got_index,) = layers.inference(predictions, [proposals])
    (want,), (want_index,) = fast_rcnn_inference(
        layers.predict_boxes(predictions, [proposals]), layers.predict_probs(predictions, [proposals]),
        [(120, 110)], 0.05, 0.5, 30)
    assert len(want) > 5
    torch.testing.assert_close(got.scores, want.scores)
    torch.testing.assert_close(got.pred_boxes.tensor, want.pred_boxes.tensor)
    assert got.pred_classes.tolist() == want.pred_classes.tolist() and got_index.tolist() == want_index.tolist()


def test_config_builds_it_in_the_box_head():
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from dcn_det import add_dcn_config
    from dcn_det.config import ConfigError, check_cfg

    cfg = add_dcn_config(get_cfg())
    cfg.merge_from_file("configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.ROI_HEADS.SOFT_NMS_METHOD = "gaussian"
    cfg.MODEL.ROI_HEADS.SOFT_NMS_SIGMA = 0.6
    predictor = build_model(cfg).roi_heads.box_predictor
    assert isinstance(predictor, SoftNMSOutputLayers) and predictor.soft_nms_sigma == 0.6
    cfg.MODEL.ROI_HEADS.SOFT_NMS_METHOD = "soft"
    with pytest.raises(ConfigError, match="MODEL.ROI_HEADS.SOFT_NMS_METHOD must be"):
        check_cfg(cfg)
