"""detectron2's RPN with the proposal rules of the original Faster R-CNN / R-FCN code (the
authors' MXNet proposal operator), each behind its own key; with both keys off it selects
exactly what detectron2's RPN selects.

MODEL.RPN.DROP_PARTIAL_CELLS: only anchors of cells (i, j) with i < floor(H / stride) and
  j < floor(W / stride), H x W the image size before padding, become proposals (the original
  cuts the score map to the image's whole cells; the partial last row / column is dropped).
MODEL.RPN.PROPOSAL_RULES:
  "detectron2": decode in float32 with detectron2's scale clamp, clip to [0, W] x [0, H],
    drop empty boxes.
  "original": decode in float64 without a scale clamp (as the original's numpy code does),
    clip to [0, W-1] x [0, H-1] in the +1 box convention, which for continuous boxes
    (x1, y1, x2 + 1, y2 + 1) is x1 in [0, W-1] and x2 in [1, W], and keep every box
    (degenerate ones too: the original's min-size filter at 0 removes nothing).
Both then take the top PRE_NMS_TOPK by objectness, run NMS, keep POST_NMS_TOPK. The
original's remaining difference: when fewer than POST_NMS_TOPK boxes survive NMS it pads
with random repeats; those duplicates cannot change the detections after the per-class NMS.
Ties in objectness may order differently (the original sorts with numpy's argsort).
"""
from typing import List, Tuple

import torch

from detectron2.config import configurable
from detectron2.layers import batched_nms
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator import RPN
from detectron2.structures import Boxes, Instances

from .plus_one_boxes import clip_plus_one

PROPOSAL_RULES = ("detectron2", "original")


def decode_plus_one_float64(anchors: torch.Tensor, deltas: torch.Tensor, weights: Tuple[float, ...]) -> torch.Tensor:
    """Boxes from ``deltas`` (dx, dy, dw, dh, divided by ``weights``) on continuous
    ``anchors``, in float64 and without clamping dw, dh. On (x1, y1, x2 + 1, y2 + 1) anchors
    this is the original's bbox_pred in the +1 convention, x2 and y2 one larger."""
    anchors = anchors.double()
    deltas = deltas.double()
    wx, wy, ww, wh = weights
    widths = anchors[:, 2] - anchors[:, 0]
    heights = anchors[:, 3] - anchors[:, 1]
    ctr_x = anchors[:, 0] + 0.5 * widths
    ctr_y = anchors[:, 1] + 0.5 * heights
    pred_ctr_x = deltas[:, 0] / wx * widths + ctr_x
    pred_ctr_y = deltas[:, 1] / wy * heights + ctr_y
    pred_w = torch.exp(deltas[:, 2] / ww) * widths
    pred_h = torch.exp(deltas[:, 3] / wh) * heights
    return torch.stack([pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h,
                        pred_ctr_x + 0.5 * pred_w, pred_ctr_y + 0.5 * pred_h], dim=1)


def whole_cell_mask(anchors: torch.Tensor, anchors_per_cell: int, stride: int,
                    image_size: Tuple[int, int]) -> torch.Tensor:
    """[len(anchors)] bool for one feature map's anchors (the RPN's (row, column, anchor)
    order, every cell holding the same anchors shifted by a multiple of ``stride``): True for
    the anchors of the image's whole cells (row < H // stride, column < W // stride). Each
    anchor's cell is read from its shift against the first cell's anchor of its kind."""
    first = anchors[:anchors_per_cell].repeat(len(anchors) // anchors_per_cell, 1)
    cell = torch.round((anchors[:, :2] - first[:, :2]) / stride)  # (column, row)
    return (cell[:, 1] < image_size[0] // stride) & (cell[:, 0] < image_size[1] // stride)


@PROPOSAL_GENERATOR_REGISTRY.register()
class OriginalRPN(RPN):
    """detectron2's RPN plus the original's proposal rules (module docstring). Training is
    detectron2's (losses over every anchor); the rules change which proposals are selected."""

    @configurable
    def __init__(self, *, drop_partial_cells: bool = False, proposal_rules: str = "detectron2", **kwargs):
        super().__init__(**kwargs)
        if proposal_rules not in PROPOSAL_RULES:
            raise ValueError(f"OriginalRPN: proposal_rules must be one of {PROPOSAL_RULES}, got {proposal_rules!r}")
        self.drop_partial_cells = bool(drop_partial_cells)
        self.proposal_rules = proposal_rules

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["drop_partial_cells"] = cfg.MODEL.RPN.DROP_PARTIAL_CELLS
        ret["proposal_rules"] = cfg.MODEL.RPN.PROPOSAL_RULES
        return ret

    def predict_proposals(self, anchors: List[Boxes], pred_objectness_logits: List[torch.Tensor],
                          pred_anchor_deltas: List[torch.Tensor], image_sizes: List[Tuple[int, int]]):
        if not self.drop_partial_cells and self.proposal_rules == "detectron2":
            return super().predict_proposals(anchors, pred_objectness_logits, pred_anchor_deltas, image_sizes)
        with torch.no_grad():
            return [self._select(anchors, pred_objectness_logits, pred_anchor_deltas, n, size)
                    for n, size in enumerate(image_sizes)]

    def _select(self, anchors, logits, deltas, n: int, image_size: Tuple[int, int]) -> Instances:
        """Proposals of image n: per map, the top PRE_NMS_TOPK; then clip, NMS per map, top
        POST_NMS_TOPK over all maps (detectron2's order of steps)."""
        pre_nms_topk = self.pre_nms_topk[self.training]
        boxes, scores, levels = [], [], []
        for level, (anchors_l, logits_l, deltas_l) in enumerate(zip(anchors, logits, deltas)):
            anchors_l, logits_l, deltas_l = anchors_l.tensor, logits_l[n], deltas_l[n]
            if self.drop_partial_cells:
                keep = whole_cell_mask(anchors_l, self.anchor_generator.num_anchors[level],
                                       self.anchor_generator.strides[level], image_size)
                anchors_l, logits_l, deltas_l = anchors_l[keep], logits_l[keep], deltas_l[keep]
            top_scores, top = logits_l.topk(min(pre_nms_topk, logits_l.numel()))
            if self.proposal_rules == "original":
                top_boxes = decode_plus_one_float64(anchors_l[top], deltas_l[top], self.box2box_transform.weights)
            else:
                top_boxes = self.box2box_transform.apply_deltas(deltas_l[top], anchors_l[top])
            boxes.append(top_boxes)
            scores.append(top_scores)
            levels.append(torch.full_like(top, level))
        boxes, scores, levels = torch.cat(boxes), torch.cat(scores), torch.cat(levels)

        finite = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)
        if not finite.all():
            if self.training:
                raise FloatingPointError("Predicted boxes or scores contain Inf/NaN. Training has diverged.")
            boxes, scores, levels = boxes[finite], scores[finite], levels[finite]
        if self.proposal_rules == "original":
            boxes = clip_plus_one(boxes, image_size).to(scores.dtype)  # NMS in float32, as the original
        else:
            clipped = Boxes(boxes)
            clipped.clip(image_size)
            nonempty = clipped.nonempty(threshold=self.min_box_size)
            boxes, scores, levels = clipped.tensor[nonempty], scores[nonempty], levels[nonempty]
        keep = batched_nms(boxes, scores, levels, self.nms_thresh)[: self.post_nms_topk[self.training]]
        result = Instances(image_size)
        result.proposal_boxes = Boxes(boxes[keep])
        result.objectness_logits = scores[keep]
        return result
