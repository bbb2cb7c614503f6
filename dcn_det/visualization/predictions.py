"""Pictures of a model's predictions (detectron2's ``Visualizer``: boxes, masks and semantic
labels with the data set's class names), optionally with where its deformable convolutions
sample for the top detections."""
from typing import List, Optional, Tuple

import numpy as np
import torch

from .drawing import draw_points
from .sampling import OffsetFields

SAMPLING_COLOURS = ((0, 0, 255), (255, 0, 255), (0, 200, 255))  # BGR, one per detection


def draw_predictions(image_bgr: np.ndarray, instances=None, sem_seg: Optional[torch.Tensor] = None, metadata=None) -> np.ndarray:
    """BGR picture of ``instances`` (already filtered) or of ``sem_seg`` ([H, W] labels)."""
    from detectron2.utils.visualizer import Visualizer

    vis = Visualizer(image_bgr[:, :, ::-1], metadata)
    if sem_seg is not None:
        out = vis.draw_sem_seg(sem_seg.to("cpu"))
    else:
        out = vis.draw_instance_predictions(instances.to("cpu"))
    return np.ascontiguousarray(out.get_image()[:, :, ::-1])


def sampling_centers(instances=None, sem_seg: Optional[torch.Tensor] = None, top_k: int = 3) -> List[Tuple[float, float]]:
    """Image (x, y) points to follow: the centres of the ``top_k`` best boxes, or for a
    semantic map the median pixel of each of its ``top_k`` largest classes."""
    if sem_seg is not None:
        labels = sem_seg.to("cpu").numpy()
        classes, counts = np.unique(labels, return_counts=True)
        centers = []
        for c in classes[np.argsort(-counts)][:top_k]:
            ys, xs = np.nonzero(labels == c)
            i = np.argsort(xs + ys * labels.shape[1])[len(xs) // 2]  # a pixel of the class, not a centroid off it
            centers.append((float(xs[i]), float(ys[i])))
        return centers
    boxes = instances.pred_boxes.tensor.to("cpu")[:top_k]
    return [(float(x1 + x2) / 2, float(y1 + y2) / 2) for x1, y1, x2, y2 in boxes.tolist()]


def draw_sampling(canvas_bgr: np.ndarray, record: OffsetFields, centers_xy, input_scale: Tuple[float, float]) -> np.ndarray:
    """Overlay on ``canvas_bgr`` (original image size) the points sampled for each centre;
    ``input_scale`` = (network input width / image width, height / height)."""
    sx, sy = input_scale
    for i, (cx, cy) in enumerate(centers_xy):
        points = record.points((cx * sx, cy * sy)) / np.array([sx, sy])
        ux, uy = record.unit_center((cx * sx, cy * sy))
        canvas_bgr = draw_points(canvas_bgr, points, (ux / sx, uy / sy), scale=1, colour=SAMPLING_COLOURS[i % 3])
    return canvas_bgr
