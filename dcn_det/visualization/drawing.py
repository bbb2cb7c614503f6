"""The pictures: sampling points on the image, and a zoom on each box with its regular and
displaced pooling bins (cv2, BGR images as the data sets store them)."""
from typing import Sequence, Tuple

import cv2
import numpy as np

from .pooling import BinOffsets, bin_rectangles, has_deformable_pooling, pooling_offsets
from .sampling import capture_offsets


def draw_points(image_bgr: np.ndarray, points_xy: np.ndarray, center_xy, title: str = "", scale: float = 2,
                colour=(0, 0, 255)) -> np.ndarray:
    """The image magnified ``scale`` times (small demo images: the points stay visible) with
    the sampling points as dots and the top-layer unit as a green cross."""
    canvas = image_bgr if scale == 1 else cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    canvas = np.ascontiguousarray(canvas)
    for x, y in points_xy:
        cv2.circle(canvas, (int(round(x * scale)), int(round(y * scale))), 1, colour, -1, lineType=cv2.LINE_AA)
    cx, cy = center_xy
    cv2.drawMarker(canvas, (int(cx * scale), int(cy * scale)), (0, 255, 0), cv2.MARKER_CROSS, 12, 2)
    if title:
        _label(canvas, title, (6, 18))
    return canvas


def sampling_figure(models: Sequence[Tuple[str, object]], image_bgr: np.ndarray, centers_xy: Sequence[Tuple[float, float]]) -> np.ndarray:
    """One row per activation point, one column per (name, model)."""
    rows = []
    for center in centers_xy:
        tiles = []
        for name, model in models:
            record, _ = capture_offsets(model, image_bgr)
            tiles.append(draw_points(image_bgr, record.points(center), record.unit_center(center), name))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


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
