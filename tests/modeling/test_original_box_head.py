"""DeformStandardROIHeads with the authors' Faster R-CNN box head keys:
MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM (1x1 conv + ReLU over the map before pooling),
POOL_PLUS_ONE_BOXES (pooling in the +1 convention) and MODEL.ROI_HEADS.CLIP_PLUS_ONE (the
original's clip of the detections). The whole head against MXNet: tests/verify_mxnet/."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_roi_heads
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from dcn_det import add_dcn_config
from dcn_det.config import ConfigError, check_cfg
from dcn_det.modeling.roi_heads.deform_roi_heads import ClipPlusOneOutputLayers, PlusOneBoxPooler

SHAPES = {"res5": ShapeSpec(channels=24, stride=16)}
IMAGE = (96, 128)


def _cfg(**box):
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.ROI_HEADS.NAME = "DeformStandardROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["res5"]
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 16
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    cfg.MODEL.ROI_BOX_HEAD.POOLER_TYPE = "ROIPool"
    for key, value in box.items():
        section, name = key.split("__")
        cfg.MODEL[section][name] = value
    return cfg


def _heads(**box):
    torch.manual_seed(0)
    return build_roi_heads(_cfg(**box), SHAPES)


def _proposals():
    # x2 / 16 and y2 / 16 at .5: RoIPool rounds them differently one pixel smaller.
    boxes = torch.tensor([[4.0, 6.0, 56.0, 40.0], [30.5, 10.2, 88.0, 72.0], [100.0, 60.0, 120.0, 88.0]])
    return [Instances(IMAGE, proposal_boxes=Boxes(boxes), objectness_logits=torch.zeros(3))]


def _features():
    return {"res5": torch.randn(1, 24, 6, 8, generator=torch.Generator().manual_seed(2))}


def test_reduce_conv_feeds_the_box_head_only():
    heads = _heads(ROI_BOX_HEAD__REDUCE_CONV_DIM=8)
    assert heads.box_reduce.weight.shape == (8, 24, 1, 1)
    assert heads.box_head.fc1.in_features == 8 * 7 * 7
    features, proposals = _features(), _proposals()
    heads.eval()
    with torch.no_grad():
        reduced = F.relu(F.conv2d(features["res5"], heads.box_reduce.weight, heads.box_reduce.bias))
        pooled = heads.box_pooler([reduced], [p.proposal_boxes for p in proposals])
        expected = heads.box_predictor(heads.box_head(pooled))
        predictions = heads.box_predictor(heads.box_head(heads.box_pooler(
            [heads.box_reduce(features["res5"])], [p.proposal_boxes for p in proposals])))
        detections, _ = heads(None, features, proposals)
    torch.testing.assert_close(predictions[0], expected[0])
    assert len(detections) == 1
    heads.train()
    gt = [Instances(IMAGE, gt_boxes=Boxes(torch.tensor([[10.0, 10.0, 60.0, 50.0]])), gt_classes=torch.tensor([1]))]
    with EventStorage():
        _, losses = heads(None, features, _proposals(), gt)
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    sum(losses.values()).backward()
    assert heads.box_reduce.weight.grad is not None and heads.box_reduce.weight.grad.abs().sum() > 0


def test_without_the_keys_it_is_the_standard_head():
    heads = _heads()
    assert heads.box_reduce is None and not isinstance(heads.box_pooler, PlusOneBoxPooler)
    assert type(heads.box_predictor).__name__ == "FastRCNNOutputLayers"


def test_plus_one_pooler_pools_the_boxes_one_pixel_smaller():
    heads = _heads(ROI_BOX_HEAD__POOL_PLUS_ONE_BOXES=True)
    assert isinstance(heads.box_pooler, PlusOneBoxPooler)
    x = [_features()["res5"]]
    boxes = _proposals()[0].proposal_boxes
    shifted = Boxes(boxes.tensor - torch.tensor([0.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(heads.box_pooler(x, [boxes]), heads.box_pooler.pooler(x, [shifted]), rtol=0, atol=0)
    assert not torch.equal(heads.box_pooler(x, [boxes]), heads.box_pooler.pooler(x, [boxes]))


def test_clip_plus_one_detections():
    heads = _heads(ROI_HEADS__CLIP_PLUS_ONE=True)
    assert isinstance(heads.box_predictor, ClipPlusOneOutputLayers)
    with torch.no_grad():
        heads.box_predictor.bbox_pred.bias.fill_(0.0)
        heads.box_predictor.bbox_pred.weight.fill_(0.0)
        heads.box_predictor.bbox_pred.bias[0::4] = 50.0  # move every box far right: dx = 50 widths
    proposals = _proposals()
    predictions = heads.box_predictor(heads.box_head(heads.box_pooler([_features()["res5"]],
                                                                       [p.proposal_boxes for p in proposals])))
    (boxes,) = heads.box_predictor.predict_boxes(predictions, proposals)
    boxes = boxes.view(-1, 4)
    height, width = IMAGE
    assert (boxes[:, 0] == width - 1).all() and (boxes[:, 2] == width).all()  # detectron2 would give x1 = W


@pytest.mark.parametrize("key,value,heads,message", [
    ("REDUCE_CONV_DIM", 16, "StandardROIHeads", "read by DeformStandardROIHeads"),
    ("POOL_PLUS_ONE_BOXES", True, "Res5ROIHeads", "read by DeformStandardROIHeads"),
    ("REDUCE_CONV_DIM", -1, "DeformStandardROIHeads", "must be >= 0"),
])
def test_config_checks(key, value, heads, message):
    cfg = _cfg()
    cfg.MODEL.ROI_HEADS.NAME = heads
    cfg.MODEL.ROI_BOX_HEAD[key] = value
    with pytest.raises(ConfigError, match=message):
        check_cfg(cfg)


def test_clip_plus_one_needs_a_head_that_reads_it():
    cfg = _cfg()
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    cfg.MODEL.ROI_HEADS.CLIP_PLUS_ONE = True
    with pytest.raises(ConfigError, match="CLIP_PLUS_ONE is read by"):
        check_cfg(cfg)
