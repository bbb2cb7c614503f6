#!/usr/bin/env python
"""Draw where stacked deformable convolutions sample (the DCNv1 paper's figure).

For an activation point in the top layer of the last three blocks of a ResNet stage,
follow each layer's 3x3 sampling locations (regular grid + learned offsets, bilinearly
interpolated at fractional points) down the stack: 9, 81, then 9^3 = 729 points, drawn on
the image. A plain network's points form the regular (dilated) grid; a deformable one's
follow the object.

    python tools/visualize_dcn.py --config-file configs/Demo/faster_rcnn_dcnv2.yaml \\
        --weights output/demo/dcnv2/model_final.pth --dataset shapes_dcn_val_scaled --out out.png
"""
import argparse
import os
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

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


def _interp_offsets(field: torch.Tensor, points: np.ndarray) -> np.ndarray:
    """Offsets [n, 9, 2] (dy, dx) of ``field`` [18, H, W] at fractional (y, x) points."""
    h, w = field.shape[1:]
    grid = torch.as_tensor(points[:, ::-1].copy(), dtype=torch.float32)  # (x, y)
    grid = torch.stack([grid[:, 0] / max(w - 1, 1) * 2 - 1, grid[:, 1] / max(h - 1, 1) * 2 - 1], 1)
    sampled = F.grid_sample(field[None], grid[None, :, None], align_corners=True)[0, :, :, 0]  # [18, n]
    return sampled.t().reshape(-1, 9, 2).numpy()


def sampling_points(fields: Sequence, start: Tuple[float, float], dilation: int = 1) -> np.ndarray:
    """Feature-map (y, x) sampling points of the stack for the top-layer point ``start``."""
    taps = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=np.float32) * dilation
    points = np.array([start], dtype=np.float32)
    for field in reversed(fields):  # top layer first
        grid = points[:, None, :] + taps[None]
        if field is not None:
            grid = grid + _interp_offsets(field, points)
        points = grid.reshape(-1, 2)
    return points


def to_image(points: np.ndarray, stride: int) -> np.ndarray:
    """Feature-map (y, x) to image (x, y) at the centre of the feature cell."""
    return (points[:, ::-1] + 0.5) * stride - 0.5


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
    parser.add_argument("--config-file", required=True, nargs="+", help="one or more configs (columns)")
    parser.add_argument("--weights", required=True, nargs="+", help="one checkpoint per config")
    parser.add_argument("--dataset", default="shapes_dcn_val_scaled")
    parser.add_argument("--index", type=int, default=0, help="image index in the data set")
    parser.add_argument("--out", default="output/dcn_sampling.png")
    args = parser.parse_args()
    if len(args.config_file) != len(args.weights):
        parser.error("give one --weights per --config-file")
    import dcn_det  # noqa: F401  (registers data sets and components)
    from detectron2.data import DatasetCatalog

    record = DatasetCatalog.get(args.dataset)[args.index]
    image = cv2.imread(record["file_name"])
    boxes = [a["bbox"] for a in record.get("annotations", [])]
    centers = [(b[0] + b[2] / 2, b[1] + b[3] / 2) for b in boxes[:2]] or [(image.shape[1] / 2, image.shape[0] / 2)]
    models = [(os.path.basename(c).replace(".yaml", ""), load_model(c, w)) for c, w in zip(args.config_file, args.weights)]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    cv2.imwrite(args.out, sampling_figure(models, image, centers))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
