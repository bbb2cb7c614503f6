"""Where deformable (PS-)RoI pooling puts its bins (the DCNv1 paper's RoI-pooling figure):
the learned offsets of a model's top detections, and the bins they move, computed by the
operator's own geometry (:func:`dcn_det.ops.deform_psroi_bin_starts`)."""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch

from dcn_det.ops import deform_psroi_bin_starts

from .sampling import input_at_size


@dataclass
class BinOffsets:
    """The learned pooling offsets of one box.

    ``offset`` [2, S, S] holds the normalised (dx, dy) of each offset part (S = part size),
    ``mask`` [P, P] the modulation of each output bin (None without modulation); a bin moves
    by ``offset * trans_std * RoI size`` (see :func:`bin_rectangles`)."""

    box: Tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    label: str
    offset: np.ndarray
    mask: Optional[np.ndarray]
    trans_std: float
    pooled_size: int
    spatial_scale: float


def bin_rectangles(box, offset: np.ndarray, trans_std: float, pooled_size: int, spatial_scale: float = 1.0):
    """Regular and displaced bins of deformable (PS-)RoI pooling, in image pixels.

    The operator's geometry (``deform_psroi_bin_starts``): the RoI spans
    ``[round(x1), round(x2) + 1]`` (at least 0.1 feature cells), bin (ph, pw) is one P-th of
    it and moves by ``offset[:, part_h, part_w] * trans_std * (RoI width, RoI height)`` with
    ``part = floor(p / P * S)``; feature coordinate f is image pixel ``(f + 0.5) / scale``.

    Args:
        box: (x1, y1, x2, y2) in image pixels.
        offset: [2, S, S] normalised (dx, dy) per part.
    Returns:
        (regular, displaced), each [P, P, 4] as (x0, y0, x1, y1) per bin (row ph, column pw).
    """
    offset = np.asarray(offset, dtype=np.float64)
    if offset.ndim != 3 or offset.shape[0] != 2 or offset.shape[1] != offset.shape[2]:
        raise ValueError(f"offset must be [2, S, S] (dx, dy per part), got shape {offset.shape}")
    if pooled_size < 1:
        raise ValueError(f"pooled_size must be >= 1, got {pooled_size}")
    rois = torch.tensor([[0.0, *box]], dtype=torch.float64)
    p = pooled_size

    def rectangles(moved: Optional[torch.Tensor]) -> np.ndarray:
        wstart, hstart, bin_w, bin_h = deform_psroi_bin_starts(rois, moved, spatial_scale, p, offset.shape[1], trans_std)
        x0 = wstart[0, 0].expand(p, p)
        y0 = hstart[0, 0].expand(p, p)
        corners = torch.stack([x0, y0, x0 + bin_w[0], y0 + bin_h[0]], dim=-1)
        return ((corners + 0.5) / spatial_scale).numpy()

    return rectangles(None), rectangles(torch.from_numpy(offset)[None])


def _detections(model, image_bgr: np.ndarray, top_k: int, fallback_boxes, class_names):
    """The model's features and its ``top_k`` best boxes as (box, label, class index);
    ``fallback_boxes`` (ground truth) when it detects nothing."""
    from detectron2.structures import Boxes, pairwise_iou

    inputs = [input_at_size(image_bgr)]
    with torch.no_grad():
        instances = model(inputs)[0]["instances"]
        features = model.backbone(model.preprocess_image(inputs).tensor)
    found, kept = [], []
    for box, score, cls in zip(instances.pred_boxes.tensor, instances.scores, instances.pred_classes):
        if len(found) == top_k:
            break
        if kept and pairwise_iou(Boxes(box[None]), Boxes(torch.stack(kept))).max() > 0.5:
            continue  # the same object under another class: one panel is enough
        kept.append(box)
        name = class_names[int(cls)] if class_names and int(cls) < len(class_names) else f"class {int(cls)}"
        found.append((box.tolist(), f"{name} {float(score):.2f}", int(cls)))
    if not found:
        found = [(list(b), "ground truth (no detection)", None) for b in list(fallback_boxes)[:top_k]]
    return features, found


def pooling_offsets(model, image_bgr: np.ndarray, top_k: int = 3, fallback_boxes=(), class_names=None) -> List[BinOffsets]:
    """Run ``model`` on one image (BGR, fed at its size, as the model's test input) and
    return the deformable pooling offsets of its ``top_k`` best detections (or of
    ``fallback_boxes``, e.g. the ground truth, when it detects nothing).

    Supports Faster R-CNN heads with :class:`DeformROIPooler` (offsets captured with forward
    hooks on its offset/mask branches, boxes assigned to pyramid levels as in training) and
    R-FCN heads with deformable PS-RoI pooling (the classification pool's offset field of
    the detected class). Raises ValueError for a model without deformable RoI pooling."""
    from detectron2.structures import Boxes

    from dcn_det.modeling import DeformROIPooler, RFCNROIHeads

    heads = model.roi_heads
    pooler = _box_pooler(heads)
    rfcn = isinstance(heads, RFCNROIHeads) and heads.cls_pool is not None
    if not rfcn and not isinstance(pooler, DeformROIPooler):
        raise ValueError(f"{type(heads).__name__} has no deformable RoI pooling (MODEL.DCN.POOL or MODEL.RFCN.DEFORMABLE)")
    features, found = _detections(model, image_bgr, top_k, fallback_boxes, class_names)
    results = []
    for box, label, cls in found:
        boxes = torch.tensor([box], dtype=torch.float32)
        if rfcn:
            pool = heads.cls_pool
            k, classes = pool.group_size, pool.num_offset_classes
            c = 0 if classes == 1 else (cls if cls is not None else heads.num_classes)  # background field for a gt box
            with torch.no_grad():
                x = heads.hidden(features[heads.in_feature])
                branch = pool.conv_offset(x)
                rois = torch.cat([torch.zeros(1, 1), boxes], 1)
                offset = pool._pool_plain(branch[:, : 2 * classes * k * k], rois, 2 * classes)[0, 2 * c : 2 * c + 2]
                mask = None
                if pool.modulated:
                    mask = pool._pool_plain(branch[:, 2 * classes * k * k :], rois, classes)[0, c].sigmoid()
            results.append(BinOffsets(tuple(box), label, offset.numpy(), None if mask is None else mask.numpy(),
                                      pool.trans_std, k, pool.spatial_scale))
            continue
        level = 0 if len(pooler.scales) == 1 else _level(pooler, boxes)
        pool = pooler.pool_of_level(level)
        captured = {}

        def keep(key):
            def hook(module, inputs, output):
                if output.shape[0]:  # the pooler also calls the pool for empty pyramid levels
                    captured[key] = output.detach()
            return hook

        hooks = [pool.offset_fc.register_forward_hook(keep("offset"))]
        if hasattr(pool, "mask_fc"):
            hooks.append(pool.mask_fc.register_forward_hook(keep("mask")))
        in_features = getattr(heads, "box_in_features", None) or heads.in_features
        try:
            with torch.no_grad():
                pooler([features[f] for f in in_features], [Boxes(boxes)])
        finally:
            for h in hooks:
                h.remove()
        s, p = pool.part_size, pool.output_size
        mask = captured["mask"].sigmoid().view(p, p).numpy() if "mask" in captured else None
        results.append(BinOffsets(tuple(box), label, captured["offset"].view(2, s, s).numpy(), mask,
                                  pool.trans_std, p, pooler.scales[level]))
    return results


def _level(pooler, boxes: torch.Tensor) -> int:
    from detectron2.modeling.poolers import assign_boxes_to_levels
    from detectron2.structures import Boxes

    levels = assign_boxes_to_levels([Boxes(boxes)], pooler.min_level, pooler.max_level, pooler.canonical_box_size, pooler.canonical_level)
    return int(levels[0])


def _box_pooler(heads):
    """The ROI heads' box pooler (``box_pooler`` of detectron2's heads, ``pooler`` of ours),
    None if they have neither."""
    return getattr(heads, "box_pooler", None) or getattr(heads, "pooler", None)


def has_deformable_pooling(model) -> bool:
    from dcn_det.modeling import DeformROIPooler, RFCNROIHeads

    heads = model.roi_heads
    if isinstance(heads, RFCNROIHeads):
        return heads.cls_pool is not None
    return isinstance(_box_pooler(heads), DeformROIPooler)
