"""Soft-NMS (Bodla et al., 2017) for detectron2's Fast R-CNN inference, as the authors'
Deformable FPN tests (Gaussian, sigma 0.6, IoU in the +1 convention): instead of removing the
boxes that overlap a kept one, their scores decay (``linear``: times 1 - IoU above the
threshold; ``gaussian``: times exp(-IoU^2 / sigma); ``hard``: removed above the threshold, which
is plain NMS) and boxes whose score falls below ``score_threshold`` are dropped.

``SoftNMSOutputLayers`` is detectron2's FastRCNNOutputLayers with that inference
(MODEL.ROI_HEADS.SOFT_NMS_METHOD and SOFT_NMS_*; DeformStandardROIHeads builds it).
"""
import math
from typing import List, Tuple

import torch
from detectron2.config import configurable
from detectron2.modeling.roi_heads import FastRCNNOutputLayers
from detectron2.structures import Boxes, Instances

from .plus_one_boxes import clip_predicted_plus_one

SOFT_NMS_METHODS = ("linear", "gaussian", "hard")


def _iou(box: torch.Tensor, boxes: torch.Tensor, plus_one: bool) -> torch.Tensor:
    one = 1.0 if plus_one else 0.0
    area = (box[2] - box[0] + one) * (box[3] - box[1] + one)
    areas = (boxes[:, 2] - boxes[:, 0] + one) * (boxes[:, 3] - boxes[:, 1] + one)
    w = (torch.minimum(box[2], boxes[:, 2]) - torch.maximum(box[0], boxes[:, 0]) + one).clamp(min=0)
    h = (torch.minimum(box[3], boxes[:, 3]) - torch.maximum(box[1], boxes[:, 1]) + one).clamp(min=0)
    inter = w * h
    return inter / (area + areas - inter).clamp(min=torch.finfo(boxes.dtype).tiny)


def soft_nms(boxes: torch.Tensor, scores: torch.Tensor, method: str = "gaussian", sigma: float = 0.5,
             iou_threshold: float = 0.3, score_threshold: float = 0.001, plus_one: bool = False
             ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS of ``boxes`` [N, 4] (x1, y1, x2, y2) with ``scores`` [N]: (indices of the kept
    boxes in the order they were picked, their decayed scores). One class at a time."""
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"soft_nms: method must be one of {SOFT_NMS_METHODS}, got {method!r}")
    if method == "gaussian" and not sigma > 0:
        raise ValueError(f"soft_nms: sigma must be > 0, got {sigma}")
    scores = scores.clone()
    remaining = torch.arange(len(scores), device=scores.device)
    keep, kept_scores = [], []
    while len(remaining):
        best = int(torch.argmax(scores[remaining]))
        i = remaining[best]
        keep.append(i)
        kept_scores.append(scores[i])
        remaining = torch.cat([remaining[:best], remaining[best + 1:]])
        if not len(remaining):
            break
        iou = _iou(boxes[i], boxes[remaining], plus_one)
        if method == "gaussian":
            weight = torch.exp(-(iou * iou) / sigma)
        elif method == "linear":
            weight = torch.where(iou > iou_threshold, 1 - iou, torch.ones_like(iou))
        else:
            weight = (iou <= iou_threshold).to(scores.dtype)
        scores[remaining] = scores[remaining] * weight
        alive = scores[remaining] >= score_threshold
        if method == "hard":  # removed, whatever the threshold
            alive &= iou <= iou_threshold
        remaining = remaining[alive]
    if not keep:
        return remaining.new_zeros(0), scores.new_zeros(0)
    return torch.stack(keep), torch.stack(kept_scores)


def soft_nms_inference_single_image(boxes, scores, image_shape, score_thresh: float, topk_per_image: int,
                                    method: str, sigma: float, iou_threshold: float, prune: float,
                                    plus_one: bool) -> Tuple[Instances, torch.Tensor]:
    """detectron2's ``fast_rcnn_inference_single_image`` with per-class soft-NMS in place of NMS:
    (Instances with pred_boxes, scores, pred_classes; the proposal index of each)."""
    valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    index = torch.nonzero(valid, as_tuple=True)[0]
    boxes, scores = boxes[valid], scores[valid, :-1]
    num_reg = boxes.shape[1] // 4
    clipped = Boxes(boxes.reshape(-1, 4))
    clipped.clip(image_shape)
    boxes = clipped.tensor.view(-1, num_reg, 4)
    picked_boxes, picked_scores, picked_classes, picked_rows = [], [], [], []
    for c in range(scores.shape[1]):
        rows = torch.nonzero(scores[:, c] > score_thresh, as_tuple=True)[0]
        if not len(rows):
            continue
        class_boxes = boxes[rows, 0 if num_reg == 1 else c]
        kept, decayed = soft_nms(class_boxes, scores[rows, c], method, sigma, iou_threshold, prune, plus_one)
        picked_boxes.append(class_boxes[kept])
        picked_scores.append(decayed)
        picked_classes.append(torch.full_like(kept, c))
        picked_rows.append(rows[kept])
    result = Instances(image_shape)
    if not picked_boxes:
        result.pred_boxes = Boxes(boxes.new_zeros(0, 4))
        result.scores = scores.new_zeros(0)
        result.pred_classes = torch.zeros(0, dtype=torch.long, device=scores.device)
        return result, index.new_zeros(0)
    all_scores = torch.cat(picked_scores)
    order = torch.argsort(all_scores, descending=True, stable=True)
    if topk_per_image >= 0:
        order = order[:topk_per_image]
    result.pred_boxes = Boxes(torch.cat(picked_boxes)[order])
    result.scores = all_scores[order]
    result.pred_classes = torch.cat(picked_classes)[order]
    return result, index[torch.cat(picked_rows)[order]]


class SoftNMSOutputLayers(FastRCNNOutputLayers):
    """FastRCNNOutputLayers whose inference uses :func:`soft_nms` per class (score threshold
    ``test_score_thresh`` before, ``soft_nms_prune`` after the decay, then the top
    ``test_topk_per_image``; the linear and hard rules use ``test_nms_thresh``).
    ``clip_plus_one``: boxes clipped as the original clips them (MODEL.ROI_HEADS.CLIP_PLUS_ONE)."""

    @configurable
    def __init__(self, *args, soft_nms_method: str = "gaussian", soft_nms_sigma: float = 0.5,
                 soft_nms_prune: float = 0.001, soft_nms_plus_one_iou: bool = False, clip_plus_one: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if soft_nms_method not in SOFT_NMS_METHODS:
            raise ValueError(f"MODEL.ROI_HEADS.SOFT_NMS_METHOD must be one of {SOFT_NMS_METHODS}, got {soft_nms_method!r}")
        if not (soft_nms_sigma > 0 and math.isfinite(soft_nms_sigma)):
            raise ValueError(f"MODEL.ROI_HEADS.SOFT_NMS_SIGMA must be > 0, got {soft_nms_sigma}")
        self.soft_nms_method = soft_nms_method
        self.soft_nms_sigma = soft_nms_sigma
        self.soft_nms_prune = soft_nms_prune
        self.soft_nms_plus_one_iou = soft_nms_plus_one_iou
        self.clip_plus_one = clip_plus_one

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        heads = cfg.MODEL.ROI_HEADS
        ret.update(soft_nms_method=heads.SOFT_NMS_METHOD, soft_nms_sigma=heads.SOFT_NMS_SIGMA,
                   soft_nms_prune=heads.SOFT_NMS_PRUNE, soft_nms_plus_one_iou=heads.SOFT_NMS_PLUS_ONE_IOU,
                   clip_plus_one=heads.CLIP_PLUS_ONE)
        return ret

    def predict_boxes(self, predictions, proposals: List[Instances]):
        boxes = super().predict_boxes(predictions, proposals)
        return clip_predicted_plus_one(boxes, proposals) if self.clip_plus_one else boxes

    def inference(self, predictions, proposals: List[Instances]):
        boxes = self.predict_boxes(predictions, proposals)
        scores = self.predict_probs(predictions, proposals)
        results = [
            soft_nms_inference_single_image(b, s, p.image_size, self.test_score_thresh, self.test_topk_per_image,
                                            self.soft_nms_method, self.soft_nms_sigma, self.test_nms_thresh,
                                            self.soft_nms_prune, self.soft_nms_plus_one_iou)
            for b, s, p in zip(boxes, scores, proposals)
        ]
        return [r[0] for r in results], [r[1] for r in results]
