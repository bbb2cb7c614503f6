#!/usr/bin/env python
"""Pictures of what the deformable layers learned.

1. Where stacked deformable convolutions sample (the DCNv1 paper's figure): for an
   activation point in the top layer of the last three blocks of a ResNet stage,
   follow each layer's 3x3 sampling locations (regular grid + learned offsets, bilinearly
   interpolated at fractional points) down the stack: 9, 81, then 9^3 = 729 points, drawn
   on the image. A plain network's points form the regular (dilated) grid; a deformable
   one's follow the object.
2. Where deformable RoI pooling puts its bins (the DCNv1 paper's RoI-pooling figure): for
   the top detections, the regular 7x7 bin grid of the box (grey) and every bin moved by
   its learned offset (coloured; the pixel shift is offset * trans_std * RoI width/height),
   with the DCNv2 modulation mask as dot size and opacity. Faster R-CNN's (modulated)
   deformable RoI pooling, and R-FCN's deformable PS-RoI pooling (the detected class's
   offset field).

    python tools/visualize_dcn.py --config-file configs/Demo/faster_rcnn_dcnv2.yaml \\
        --weights output/demo/dcnv2/model_final.pth --dataset shapes_dcn_val_scaled --out out.png
    python tools/visualize_dcn.py --figure pooling --config-file configs/Demo/faster_rcnn_dcnv2.yaml \\
        --weights output/demo/dcnv2/model_final.pth --dataset shapes_dcn_val --pooling-out pool.png
"""
import argparse
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from dcn_det.visualization import sampling_points, to_image

STAGE = "res4"  # stride 16: the finest stage whose last blocks are all deformable in the demo configs


def _bottom_up(model):
    backbone = model.backbone
    return getattr(backbone, "bottom_up", backbone)


def capture_offsets(model, image_bgr: np.ndarray, stage: str = STAGE, layers: int = 3):
    """Run the model on one image; return (offset fields of the last ``layers`` blocks of
    ``stage``, each [2*9, H, W] as (dy, dx) per tap or None for a plain block; stride;
    dilation; model outputs)."""
    from dcn_det.modeling.backbone import DeformBottleneck

    resnet = _bottom_up(model)
    blocks = list(getattr(resnet, stage))[-layers:]
    fields: List = [None] * len(blocks)
    hooks = []
    for i, block in enumerate(blocks):
        if isinstance(block, DeformBottleneck):
            def hook(module, inputs, output, i=i):
                # The first 2*9 channels are the offsets (the rest, if any, the DCNv2 mask).
                fields[i] = output[0, : 2 * 9].detach().float()

            hooks.append(block.conv2_offset.register_forward_hook(hook))
    image = torch.as_tensor(image_bgr.astype("float32").transpose(2, 0, 1))
    try:
        with torch.no_grad():
            outputs = model([{"image": image, "height": image_bgr.shape[0], "width": image_bgr.shape[1]}])
    finally:
        for h in hooks:
            h.remove()
    stride = resnet.output_shape()[stage].stride
    dilation = blocks[-1].conv2.dilation[0] if hasattr(blocks[-1].conv2, "dilation") else 1
    return fields, stride, dilation, outputs


def draw(image_bgr: np.ndarray, points_xy: np.ndarray, center_xy, title: str) -> np.ndarray:
    scale = 2  # upscale small demo images so the points are visible
    canvas = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for x, y in points_xy:
        cv2.circle(canvas, (int(round(x * scale)), int(round(y * scale))), 1, (0, 0, 255), -1, lineType=cv2.LINE_AA)
    cx, cy = center_xy
    cv2.drawMarker(canvas, (int(cx * scale), int(cy * scale)), (0, 255, 0), cv2.MARKER_CROSS, 12, 2)
    cv2.putText(canvas, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(canvas, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def sampling_figure(models: Sequence[Tuple[str, object]], image_bgr: np.ndarray, centers_xy: Sequence[Tuple[float, float]]) -> np.ndarray:
    """One row per activation point, one column per (name, model)."""
    rows = []
    for center in centers_xy:
        tiles = []
        for name, model in models:
            fields, stride, dilation, _ = capture_offsets(model, image_bgr)
            start = ((center[1] + 0.5) / stride - 0.5, (center[0] + 0.5) / stride - 0.5)
            start = (round(start[0]), round(start[1]))  # an activation unit of the top layer
            pts = to_image(sampling_points(fields, start, dilation), stride)
            tiles.append(draw(image_bgr, pts, ((start[1] + 0.5) * stride - 0.5, (start[0] + 0.5) * stride - 0.5), name))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


# --- deformable RoI pooling: where the bins go ------------------------------------------------


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


def _round_away(v: float) -> float:
    """C's round(): halves away from zero (as the operator rounds RoI corners)."""
    return float(np.sign(v) * np.floor(abs(v) + 0.5))


def bin_rectangles(box, offset: np.ndarray, trans_std: float, pooled_size: int, spatial_scale: float = 1.0):
    """Regular and displaced bins of deformable (PS-)RoI pooling, in image pixels.

    Follows ``dcn_det.ops.deform_psroi_pool``: the RoI spans ``[round(x1), round(x2) + 1]``
    (width at least 0.1 feature cells), bin (ph, pw) is one P-th of it and moves by
    ``offset[:, part_h, part_w] * trans_std * (RoI width, RoI height)`` with
    ``part = floor(p / P * S)``.

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
    p, s = pooled_size, offset.shape[1]
    x1, y1 = _round_away(box[0]), _round_away(box[1])
    width = max((_round_away(box[2]) + 1 - x1) * spatial_scale, 0.1) / spatial_scale
    height = max((_round_away(box[3]) + 1 - y1) * spatial_scale, 0.1) / spatial_scale
    bw, bh = width / p, height / p
    idx = np.arange(p)
    part = np.floor(idx / p * s).astype(int)
    x0 = x1 + idx[None, :] * bw + np.zeros((p, 1))  # [P(ph), P(pw)]
    y0 = y1 + idx[:, None] * bh + np.zeros((1, p))
    regular = np.stack([x0, y0, x0 + bw, y0 + bh], axis=-1)
    dx = offset[0][np.ix_(part, part)] * trans_std * width
    dy = offset[1][np.ix_(part, part)] * trans_std * height
    shift = np.stack([dx, dy, dx, dy], axis=-1)
    return regular, regular + shift


def _detections(model, image_bgr: np.ndarray, top_k: int, fallback_boxes, class_names):
    """The model's features and its ``top_k`` best boxes as (box, label, class index);
    ``fallback_boxes`` (ground truth) when it detects nothing."""
    from detectron2.structures import Boxes, pairwise_iou

    image = torch.as_tensor(image_bgr.astype("float32").transpose(2, 0, 1))
    inputs = [{"image": image, "height": image_bgr.shape[0], "width": image_bgr.shape[1]}]
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
    pooler = getattr(heads, "box_pooler", None) or getattr(heads, "pooler", None)
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
        pool = pooler.pool
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
        level = 0 if len(pooler.scales) == 1 else _level(pooler, boxes)
        mask = captured["mask"].sigmoid().view(p, p).numpy() if "mask" in captured else None
        results.append(BinOffsets(tuple(box), label, captured["offset"].view(2, s, s).numpy(), mask,
                                  pool.trans_std, p, pooler.scales[level]))
    return results


def _level(pooler, boxes: torch.Tensor) -> int:
    from detectron2.modeling.poolers import assign_boxes_to_levels
    from detectron2.structures import Boxes

    levels = assign_boxes_to_levels([Boxes(boxes)], pooler.min_level, pooler.max_level, pooler.canonical_box_size, pooler.canonical_level)
    return int(levels[0])


_PANEL = 300  # pixels per side of a zoomed box panel


def _bin_colour(ph: int, pw: int, p: int) -> Tuple[int, int, int]:
    """A distinct BGR colour per bin: hue by position along the rows, brightness by column."""
    hue = int(170 * (ph * p + pw) / max(p * p - 1, 1))
    hsv = np.uint8([[[hue, 230, 255]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_bin_offsets(image_bgr: np.ndarray, item: BinOffsets, size: int = _PANEL) -> np.ndarray:
    """A ``size`` x ``size`` zoom on one box: its regular bins (thin grey grid), each bin moved
    by its learned offset (coloured outline, arrow from the regular bin centre, dot at the
    moved centre; with a modulation mask the outline's opacity and the dot's radius grow
    with it), and the box (green)."""
    regular, displaced = bin_rectangles(item.box, item.offset, item.trans_std, item.pooled_size, item.spatial_scale)
    corners = np.concatenate([regular.reshape(-1, 4), displaced.reshape(-1, 4)])
    lo, hi = corners[:, :2].min(0), corners[:, 2:].max(0)
    side = max(hi - lo) * 1.25 + 4
    centre = (lo + hi) / 2
    origin = centre - side / 2
    zoom = size / side
    warp = np.float32([[zoom, 0, -origin[0] * zoom], [0, zoom, -origin[1] * zoom]])
    canvas = cv2.warpAffine(image_bgr, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 90, 90))
    canvas = (canvas.astype(np.float32) * 0.6 + 255 * 0.4).astype(np.uint8)  # faded, so the bins stand out

    def pt(x, y):
        return int(round((x - origin[0]) * zoom)), int(round((y - origin[1]) * zoom))

    p = item.pooled_size
    for x0, y0, x1, y1 in regular.reshape(-1, 4):
        cv2.rectangle(canvas, pt(x0, y0), pt(x1, y1), (150, 150, 150), 1)
    for ph in range(p):
        for pw in range(p):
            colour = _bin_colour(ph, pw, p)
            weight = 1.0 if item.mask is None else float(item.mask[ph, pw])
            x0, y0, x1, y1 = displaced[ph, pw]
            overlay = canvas.copy()
            cv2.rectangle(overlay, pt(x0, y0), pt(x1, y1), colour, 1, lineType=cv2.LINE_AA)
            alpha = 0.25 + 0.6 * weight
            canvas = cv2.addWeighted(overlay, alpha, canvas, 1 - alpha, 0)
            start = pt(*(regular[ph, pw, :2] + regular[ph, pw, 2:]) / 2)
            end = pt(*(displaced[ph, pw, :2] + displaced[ph, pw, 2:]) / 2)
            if start != end:
                cv2.arrowedLine(canvas, start, end, colour, 1, line_type=cv2.LINE_AA, tipLength=0.3)
            cv2.circle(canvas, end, 2 + int(round(3 * weight)), colour, -1, lineType=cv2.LINE_AA)
    bx0, by0, bx1, by1 = item.box
    cv2.rectangle(canvas, pt(bx0, by0), pt(bx1, by1), (0, 170, 0), 2)
    _label(canvas, item.label, (6, 18))
    return canvas


def _label(canvas: np.ndarray, text: str, org) -> None:
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)


def has_deformable_pooling(model) -> bool:
    from dcn_det.modeling import DeformROIPooler, RFCNROIHeads

    heads = model.roi_heads
    if isinstance(heads, RFCNROIHeads):
        return heads.cls_pool is not None
    return isinstance(getattr(heads, "box_pooler", None) or getattr(heads, "pooler", None), DeformROIPooler)


def pooling_figure(models: Sequence[Tuple[str, object]], image_bgr: np.ndarray, top_k: int = 3,
                   fallback_boxes=(), class_names=None) -> np.ndarray:
    """One row per model with deformable RoI pooling: the image with its top boxes
    (numbered), then a zoom on each box with its regular and displaced bins. Models without
    deformable pooling are left out (their bins are the regular grid); ValueError if none has it."""
    rows = []
    for name, model in models:
        if not has_deformable_pooling(model):
            continue
        items = pooling_offsets(model, image_bgr, top_k, fallback_boxes, class_names)
        zoom = _PANEL / image_bgr.shape[0]
        overview = cv2.resize(image_bgr, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
        for i, item in enumerate(items):
            x0, y0, x1, y1 = (int(round(v * zoom)) for v in item.box)
            cv2.rectangle(overview, (x0, y0), (x1, y1), (0, 170, 0), 2)
            _label(overview, str(i + 1), (x0 + 3, y0 + 16))
        _label(overview, name, (6, 18))
        tiles = [overview]
        for i, item in enumerate(items):
            tile = draw_bin_offsets(image_bgr, item)
            item_label = f"{i + 1}: {item.label}"
            tile[:24] = 255
            _label(tile, item_label, (6, 18))
            tiles.append(tile)
        rows.append(np.hstack([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in tiles]))
    if not rows:
        raise ValueError("none of the models has deformable RoI pooling (MODEL.DCN.POOL or MODEL.RFCN.DEFORMABLE)")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    legend = np.full((28, width, 3), 255, np.uint8)
    cv2.putText(legend, "grey: regular bins of the box;  colour: each bin moved by its learned offset (arrow), "
                "dot size/opacity: modulation mask", (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack(rows + [legend])


def load_model(config_file: str, weights: str, opts=()):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from dcn_det.engine import build_cfg

    cfg = build_cfg(config_file, ["MODEL.DEVICE", "cpu", *opts])
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(weights)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, nargs="+", help="one or more configs (columns / rows)")
    parser.add_argument("--weights", required=True, nargs="+", help="one checkpoint per config")
    parser.add_argument("--dataset", default="shapes_dcn_val_scaled")
    parser.add_argument("--index", type=int, default=0, help="image index in the data set")
    parser.add_argument("--figure", choices=("sampling", "pooling", "both"), default="sampling",
                        help="sampling: where stacked deformable convs sample (--out); pooling: deformable RoI "
                        "pooling bins of the top detections (--pooling-out); both")
    parser.add_argument("--out", default="output/dcn_sampling.png")
    parser.add_argument("--pooling-out", default="output/dcn_pooling_offsets.png")
    parser.add_argument("--top-k", type=int, default=3, help="detections drawn in the pooling figure")
    args = parser.parse_args()
    if len(args.config_file) != len(args.weights):
        parser.error("give one --weights per --config-file")
    if args.top_k < 1:
        parser.error("--top-k must be >= 1")
    for path in args.config_file + args.weights:
        if not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    import dcn_det  # noqa: F401  (registers data sets and components)
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if args.dataset not in DatasetCatalog.list():
        parser.error(f"data set {args.dataset!r} is not registered")
    records = DatasetCatalog.get(args.dataset)
    if not 0 <= args.index < len(records):
        parser.error(f"--index must be in [0, {len(records) - 1}] for {args.dataset}")
    record = records[args.index]
    image = cv2.imread(record["file_name"])
    boxes = [a["bbox"] for a in record.get("annotations", [])]
    models = [(os.path.basename(c).replace(".yaml", ""), load_model(c, w)) for c, w in zip(args.config_file, args.weights)]
    if args.figure in ("sampling", "both"):
        centers = [(b[0] + b[2] / 2, b[1] + b[3] / 2) for b in boxes[:2]] or [(image.shape[1] / 2, image.shape[0] / 2)]
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        cv2.imwrite(args.out, sampling_figure(models, image, centers))
        print(f"wrote {args.out}")
    if args.figure in ("pooling", "both"):
        if not any(has_deformable_pooling(m) for _, m in models):
            parser.error("--figure pooling needs a model with deformable RoI pooling (MODEL.DCN.POOL dpool/mdpool "
                         "or MODEL.RFCN.DEFORMABLE)")
        gt = [(x, y, x + w, y + h) for x, y, w, h in boxes]
        names = MetadataCatalog.get(args.dataset).get("thing_classes")
        os.makedirs(os.path.dirname(os.path.abspath(args.pooling_out)), exist_ok=True)
        cv2.imwrite(args.pooling_out, pooling_figure(models, image, args.top_k, gt, names))
        print(f"wrote {args.pooling_out}")


if __name__ == "__main__":
    main()
