"""configs/Original/{rfcn,rcnn}*_coco.yaml against the authors' R-FCN and Faster R-CNN test
networks built in MXNet 1.9.1 (mxnet_rcnn.py: same layer names, operators and settings, reduced width, ResNet-50
depth, random weights with non-zero offsets): the weights are saved in the authors' .params
naming, converted by tools/convert_mxnet_model.py, and both networks run on the same
preprocessed image tensor. Compared stage by stage: res4, res5, the RPN's probabilities and
deltas, the proposals (same boxes, same order), and -- given the same RoIs -- the pooled
features (R-FCN: class scores), class probabilities, box deltas and the final detections (against the
original's post-processing, tests/modeling/original_reference.py)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from detectron2.modeling.poolers import convert_boxes_to_pooler_format
from detectron2.structures import Boxes, ImageList, Instances

from dcn_det.engine import build_cfg
from dcn_det.modeling.plus_one_boxes import plus_one_corners
from tests.modeling import original_reference as ref

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("convert_mxnet_model", ROOT / "tools" / "convert_mxnet_model.py")
CONVERTER = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(CONVERTER)
NUM_CLASSES = 3  # + background
WIDTH = 8
HIDDEN, FC = 32, 32
PRE_NMS, POST_NMS = 300, 40

# The reduced network: ResNet-50 depth, res2 bottleneck width 8 (the original's 64), small RPN
# and heads; everything else comes from the shipped config.
REDUCED = [
    "MODEL.RESNETS.DEPTH", "50", "MODEL.RESNETS.STEM_OUT_CHANNELS", str(WIDTH),
    "MODEL.RESNETS.WIDTH_PER_GROUP", str(WIDTH), "MODEL.RESNETS.RES2_OUT_CHANNELS", str(4 * WIDTH),
    "MODEL.RPN.CONV_DIMS", "[16]", "MODEL.ROI_HEADS.NUM_CLASSES", str(NUM_CLASSES),
    "MODEL.RPN.PRE_NMS_TOPK_TEST", str(PRE_NMS), "MODEL.RPN.POST_NMS_TOPK_TEST", str(POST_NMS),
]
REDUCED_HEAD = {
    "rfcn": ["MODEL.RFCN.HIDDEN_DIM", str(HIDDEN)],
    "rcnn": ["MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM", str(HIDDEN), "MODEL.ROI_BOX_HEAD.FC_DIM", str(FC)],
}


def _relative(ours, theirs):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


def _stages(cfg, checkpoint, data, image_size, mx):
    """Largest differences per stage between our model and MXNet's outputs ``mx``."""
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(str(checkpoint))
    x = torch.from_numpy(data)
    images = ImageList(x, [image_size])
    with torch.no_grad():
        features = model.backbone(x)
        rpn = model.proposal_generator
        logits, deltas = rpn.rpn_head([features["res4"]])
        (proposals,), _ = rpn(images, features)
        # The head on MXNet's RoIs (+1 convention -> continuous: x2, y2 one larger).
        rois = torch.from_numpy(mx["rois"][:, 1:].copy())
        rois[:, 2:] += 1
        pooled, cls_logits, box_deltas = _head(model.roi_heads, features["res5"], Boxes(rois))
        (detected,), _ = model.roi_heads(images, features, [Instances(image_size, proposal_boxes=Boxes(rois))])
    # MXNet's box deltas without the background's: R-FCN's class-agnostic (bg, fg) pair, Faster
    # R-CNN's class-specific blocks.
    mx_deltas = mx["bbox_pred"][:, 4:]
    expected = ref.detections(mx["rois"][:, 1:], mx["cls_prob"], mx["bbox_pred"] if mx_deltas.shape[1] > 4
                              else mx_deltas, image_size)
    a = logits[0].shape[1]
    boxes = proposals.proposal_boxes.tensor.numpy().copy()
    boxes[:, 2:] -= 1
    probs = torch.softmax(cls_logits, dim=1).numpy()
    # Background: MXNet's class 0, our last.
    probs = np.concatenate([probs[:, -1:], probs[:, :-1]], axis=1)
    return {
        "res4": _relative(features["res4"], mx["res4"]),
        "res5": _relative(features["res5"], mx["res5"]),
        "rpn_prob": float(np.abs(torch.sigmoid(logits[0]).numpy() - mx["rpn_prob"][:, a:]).max()),
        "rpn_deltas": _relative(deltas[0], mx["rpn_bbox"]),
        "proposals": _proposal_difference(boxes, torch.sigmoid(proposals.objectness_logits).numpy(),
                                          mx["rois"][:, 1:]),
        "pooled": _relative(_bg_first(pooled) if hasattr(model.roi_heads, "rfcn_cls") else pooled, mx["pooled"]),
        "cls_prob": float(np.abs(probs - mx["cls_prob"]).max()),
        "box_deltas": float(np.abs(box_deltas.numpy() - mx_deltas).max()),
        "detections_unmatched": _unmatched(detected, expected),
    }


def _proposal_difference(boxes, probs, theirs, tie=1e-5):
    """Largest distance (px) between our i-th proposal and MXNet's i-th, except that proposals
    whose objectness probabilities tie (within ``tie``: float32 probabilities near 1 round to
    the same value, and each side orders such ties its own way) may trade places. When fewer
    than POST_NMS_TOPK survive NMS, MXNet pads with repeats of its earlier RoIs; we stop."""
    if len(boxes) > len(theirs):
        return np.inf
    if len(boxes) < len(theirs):
        kept = {tuple(r) for r in theirs[: len(boxes)]}
        if not all(tuple(r) in kept for r in theirs[len(boxes):]):
            return np.inf
        theirs = theirs[: len(boxes)]
    worst = 0.0
    for i in range(len(boxes)):
        group = np.flatnonzero(np.abs(probs - probs[i]) <= tie)
        worst = max(worst, float(np.abs(theirs[group] - boxes[i]).max(axis=1).min()))
    return worst


def _head(heads, res5, boxes):
    """(pooled features, class logits, box deltas) of either head for one image's boxes."""
    if hasattr(heads, "rfcn_cls"):  # RFCNROIHeads
        x = heads.hidden(res5)
        rois = convert_boxes_to_pooler_format([boxes])
        if heads.pool_plus_one_boxes:  # as RFCNROIHeads.predict does
            rois = plus_one_corners(rois)
        pooled = heads.cls_pool(x, heads.rfcn_cls(x), rois) if heads.cls_pool is not None \
            else heads._ps_pool(heads.rfcn_cls(x), rois, heads.num_classes + 1)
        logits, deltas = heads.predict(res5, [boxes])
        return pooled, logits, deltas
    pooled = heads.box_pooler([heads.box_reduce(res5)], [boxes])
    logits, deltas = heads.box_predictor(heads.box_head(pooled))
    return pooled, logits, deltas


def _bg_first(pooled):
    """R-FCN's pooled class scores with our background (last) moved first, as MXNet's."""
    return torch.cat([pooled[:, -1:], pooled[:, :-1]], dim=1)


def _iou_plus_one(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = iw * ih
    area = lambda x: (x[2] - x[0] + 1) * (x[3] - x[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _unmatched(detected, expected, min_score=0.05):
    """Fraction of the detections with score > min_score, ours or the reference's, that have
    no partner of the same class on the other side with IoU > 0.99 and |d score| <= 1e-4."""
    boxes = detected.pred_boxes.tensor.numpy().copy()
    boxes[:, 2:] -= 1  # continuous -> +1 convention
    ours = [(int(c), float(s), b) for c, s, b in zip(detected.pred_classes, detected.scores, boxes)]

    def missing(side, other):
        wanted = [d for d in side if d[1] > min_score]
        lost = [d for d in wanted if not any(o[0] == d[0] and abs(o[1] - d[1]) <= 1e-4 and
                                             _iou_plus_one(o[2], d[2]) > 0.99 for o in other)]
        return len(lost), len(wanted)

    lost_a, n_a = missing(ours, expected)
    lost_b, n_b = missing(expected, ours)
    assert n_a > 0 and n_b > 0, "test data: no detection above the score threshold"
    return max(lost_a / n_a, lost_b / n_b)


# Float32 on both sides, each accumulating in its own order. Features: 16 bottlenecks of sums
# of up to 9 x 512 products, 1e-4 of the map's largest value. RPN probabilities and the head's
# outputs (given the same RoIs): 1e-5 absolute; pooled features 1e-4 of the largest. Proposals:
# float32 boxes of a few hundred pixels, 1e-2 px (and the same number, in the same order up to
# ties). Detections: every one above 0.05 has its partner (see _unmatched).
TOLERANCE = {"res4": 1e-4, "res5": 1e-4, "rpn_prob": 1e-5, "rpn_deltas": 1e-4, "proposals": 1e-2,
             "pooled": 1e-4, "cls_prob": 1e-5, "box_deltas": 1e-5, "detections_unmatched": 0.01}

# Each key that makes the network the original, set back to detectron2's behaviour, and the
# first stage it must break (so this test can fail).
# (PROPOSAL_RULES changes only boxes that reach the right or bottom border, which these
# images need not have: tests/modeling/test_original_rpn.py checks it.)
FLIPS = [
    (["MODEL.RESNETS.STEM_POOL_CEIL_MODE", "False"], "res4"),
    (["MODEL.ANCHOR_GENERATOR.NAME", "DefaultAnchorGenerator", "MODEL.ANCHOR_GENERATOR.OFFSET", "0.0"], "proposals"),
]
HEAD_FLIPS = {
    "rfcn": [(["MODEL.RFCN.POOL_PLUS_ONE_BOXES", "False"], "pooled")],
    "rfcn_coco": [(["MODEL.RFCN.INTEGER_BINS", "False"], "pooled")],
    "rcnn": [(["MODEL.ROI_BOX_HEAD.POOL_PLUS_ONE_BOXES", "False"], "pooled")],
}
DEFORMABLE_FLIPS = [(["MODEL.DCN.BORDER", "dcnv2"], "res5")]


# Each shipped config and the MXNet network it must equal: head, deformable res5 (and its
# offset groups), deformable pooling, R-FCN's k, anchor scales.
CONFIGS = {
    "rfcn_dcn_coco": dict(head="rfcn", deform_conv=1, deform_groups=4, deform_pool=1, k=7, scales=(4, 8, 16, 32)),
    "rfcn_coco": dict(head="rfcn", deform_conv=0, deform_groups=4, deform_pool=0, k=7, scales=(4, 8, 16, 32)),
    "rcnn_dcn_coco": dict(head="rcnn", deform_conv=1, deform_groups=4, deform_pool=1, k=7, scales=(4, 8, 16, 32)),
    "rcnn_coco": dict(head="rcnn", deform_conv=0, deform_groups=4, deform_pool=0, k=7, scales=(4, 8, 16, 32)),
    "deform_conv_voc_demo": dict(head="rfcn", deform_conv=1, deform_groups=1, deform_pool=0, k=7, scales=(8, 16, 32)),
    "deform_psroi_voc_demo": dict(head="rfcn", deform_conv=0, deform_groups=1, deform_pool=1, k=3, scales=(8, 16, 32)),
}


# Two image sizes for the two DCN COCO models, one for the others (CI time).
CASES = [(c, size) for c in CONFIGS for size in ([(170, 215), (250, 330)] if c in ("rfcn_dcn_coco", "rcnn_dcn_coco")
                                                  else [(250, 330)])]


@pytest.mark.parametrize("config,image_size", CASES, ids=[f"{c}-{h}x{w}" for c, (h, w) in CASES])
def test_original_detector_matches_the_mxnet_network(run_mxnet, tmp_path, config, image_size):
    net = CONFIGS[config]
    head = net["head"]
    config_file = str(ROOT / "configs" / "Original" / f"{config}.yaml")
    seed = sum(image_size) + sum(map(ord, config))
    data = np.random.RandomState(seed).normal(0, 1, (1, 3, *image_size)).astype(np.float32)
    params = tmp_path / "model-0000.params"
    mx = run_mxnet("mxnet_rcnn.py", data=data, im_info=np.array([[*image_size, 1.0]], np.float32),
                   seed=np.array(seed), width=np.array(WIDTH), num_classes=np.array(NUM_CLASSES + 1),
                   **{k: np.array(v) for k, v in net.items()}, rpn_dim=np.array(16),
                   hidden_dim=np.array(HIDDEN), fc_dim=np.array(FC), pre_nms=np.array(PRE_NMS),
                   post_nms=np.array(POST_NMS), params_path=str(params))
    opts = REDUCED + REDUCED_HEAD[head]
    checkpoint = tmp_path / "model.pth"
    # The tool's conversion, in this process (its command line: tests/tools/test_convert_mxnet_model.py).
    CONVERTER.convert(config_file, str(params), str(checkpoint), opts)

    diffs = _stages(build_cfg(config_file, opts + ["MODEL.DEVICE", "cpu"]), checkpoint, data, image_size, mx)
    print("stage differences:", diffs)
    over = {k: v for k, v in diffs.items() if not v <= TOLERANCE[k]}
    assert not over, f"stages beyond tolerance {TOLERANCE}: {over}"

    flips = FLIPS + HEAD_FLIPS[head] + HEAD_FLIPS.get(config, []) + (DEFORMABLE_FLIPS if net["deform_conv"] else [])
    for flip, stage in flips:
        flipped = _stages(build_cfg(config_file, opts + flip + ["MODEL.DEVICE", "cpu"]), checkpoint, data,
                          image_size, mx)
        assert not flipped[stage] <= TOLERANCE[stage], f"{flip} should change {stage}: {flipped}"
