"""configs/Original/rfcn*_coco.yaml against the authors' R-FCN test network built in MXNet
1.9.1 (mxnet_rcnn.py: same layer names, operators and settings, reduced width, ResNet-50
depth, random weights with non-zero offsets): the weights are saved in the authors' .params
naming, converted by tools/convert_mxnet_model.py, and both networks run on the same
preprocessed image tensor. Compared stage by stage: res4, res5, the RPN's probabilities and
deltas, the proposals (same boxes, same order), and -- given the same RoIs -- the pooled class
scores, class probabilities and box deltas, and the final detections (against the
original's post-processing, tests/modeling/original_reference.py)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from detectron2.structures import Boxes, ImageList, Instances

from dcn_det.engine import build_cfg
from tests.modeling import original_reference as ref

ROOT = Path(__file__).resolve().parents[2]
NUM_CLASSES = 3  # + background
WIDTH = 8
PRE_NMS, POST_NMS = 300, 40

# The reduced network: ResNet-50 depth, res2 bottleneck width 8 (the original's 64), small RPN
# and head; everything else comes from the shipped config.
REDUCED = [
    "MODEL.RESNETS.DEPTH", "50", "MODEL.RESNETS.STEM_OUT_CHANNELS", str(WIDTH),
    "MODEL.RESNETS.WIDTH_PER_GROUP", str(WIDTH), "MODEL.RESNETS.RES2_OUT_CHANNELS", str(4 * WIDTH),
    "MODEL.RPN.CONV_DIMS", "[16]", "MODEL.RFCN.HIDDEN_DIM", "32", "MODEL.ROI_HEADS.NUM_CLASSES", str(NUM_CLASSES),
    "MODEL.RPN.PRE_NMS_TOPK_TEST", str(PRE_NMS), "MODEL.RPN.POST_NMS_TOPK_TEST", str(POST_NMS),
]


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
        cls_logits, box_deltas = model.roi_heads.predict(features["res5"], [Boxes(rois)])
        (detected,), _ = model.roi_heads(images, features, [Instances(image_size, proposal_boxes=Boxes(rois))])
    expected = ref.detections(mx["rois"][:, 1:], mx["cls_prob"], mx["bbox_pred"][:, 4:], image_size)
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
        "proposals": float(np.abs(boxes - mx["rois"][:, 1:]).max()) if len(boxes) == len(mx["rois"]) else np.inf,
        "cls_prob": float(np.abs(probs - mx["cls_prob"]).max()),
        "box_deltas": float(np.abs(box_deltas.numpy() - mx["bbox_pred"][:, 4:]).max()),
        "detections_unmatched": _unmatched(detected, expected),
    }


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
# outputs (given the same RoIs): 1e-5 absolute. Proposals: float32 boxes of a few hundred
# pixels, 1e-2 px (and the same number, in the same order).
TOLERANCE = {"res4": 1e-4, "res5": 1e-4, "rpn_prob": 1e-5, "rpn_deltas": 1e-4, "proposals": 1e-2,
             "cls_prob": 1e-5, "box_deltas": 1e-5, "detections_unmatched": 0.01}

# Each key that makes the network the original, set back to detectron2's behaviour, and the
# first stage it must break (so this test can fail).
FLIPS = [
    (["MODEL.RESNETS.STEM_POOL_CEIL_MODE", "False"], "res4"),
    (["MODEL.ANCHOR_GENERATOR.NAME", "DefaultAnchorGenerator", "MODEL.ANCHOR_GENERATOR.OFFSET", "0.0"], "proposals"),
    (["MODEL.RPN.PROPOSAL_RULES", "detectron2"], "proposals"),
    (["MODEL.RFCN.POOL_PLUS_ONE_BOXES", "False"], "cls_prob"),
]
DEFORMABLE_FLIPS = [(["MODEL.DCN.BORDER", "dcnv2"], "res5")]


@pytest.mark.parametrize("config,deformable", [("rfcn_dcn_coco.yaml", 1)])
@pytest.mark.parametrize("image_size", [(170, 215), (250, 330)])
def test_rfcn_matches_the_mxnet_network(run_mxnet, tmp_path, config, deformable, image_size):
    config_file = str(ROOT / "configs" / "Original" / config)
    seed = sum(image_size) + deformable
    data = np.random.RandomState(seed).normal(0, 1, (1, 3, *image_size)).astype(np.float32)
    params = tmp_path / "model-0000.params"
    mx = run_mxnet("mxnet_rcnn.py", data=data, im_info=np.array([[*image_size, 1.0]], np.float32),
                   seed=np.array(seed), width=np.array(WIDTH), num_classes=np.array(NUM_CLASSES + 1),
                   deformable=np.array(deformable), rpn_dim=np.array(16), hidden_dim=np.array(32),
                   pre_nms=np.array(PRE_NMS), post_nms=np.array(POST_NMS), params_path=str(params))
    checkpoint = tmp_path / "model.pth"
    tool = subprocess.run([sys.executable, str(ROOT / "tools" / "convert_mxnet_model.py"), "--config-file",
                           config_file, str(params), str(checkpoint), "--opts", *REDUCED],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=600)
    assert tool.returncode == 0, tool.stderr[-3000:]

    diffs = _stages(build_cfg(config_file, REDUCED + ["MODEL.DEVICE", "cpu"]), checkpoint, data, image_size, mx)
    print("stage differences:", diffs)
    over = {k: v for k, v in diffs.items() if not v <= TOLERANCE[k]}
    assert not over, f"stages beyond tolerance {TOLERANCE}: {over}"

    for opts, stage in FLIPS + (DEFORMABLE_FLIPS if deformable else []):
        flipped = _stages(build_cfg(config_file, REDUCED + opts + ["MODEL.DEVICE", "cpu"]), checkpoint, data,
                          image_size, mx)
        assert not flipped[stage] <= TOLERANCE[stage], f"{opts} should change {stage}: {flipped}"
