"""An independent numpy reference of the original code's anchors, test-time proposals and
detections (py-faster-rcnn's generate_anchors, the Deformable ConvNets proposal operator and
test post-processing), written from their published algorithm in the +1 box convention, for
tests/modeling/test_original_rpn.py and tests/verify_mxnet/.
Everything here is plain numpy loops over the original's steps; nothing comes from dcn_det."""
import numpy as np


def _whctrs(box):
    w = box[2] - box[0] + 1
    h = box[3] - box[1] + 1
    return w, h, box[0] + 0.5 * (w - 1), box[1] + 0.5 * (h - 1)


def _box(w, h, cx, cy):
    return [cx - 0.5 * (w - 1), cy - 0.5 * (h - 1), cx + 0.5 * (w - 1), cy + 0.5 * (h - 1)]


def generate_anchors(base_size=16, ratios=(0.5, 1, 2), scales=(8, 16, 32)):
    """[len(ratios) * len(scales), 4] float64, +1 convention, ratio-major."""
    w, h, cx, cy = _whctrs([0, 0, base_size - 1, base_size - 1])
    out = []
    for ratio in ratios:
        ws = np.round(np.sqrt(w * h / ratio))
        hs = np.round(ws * ratio)
        rw, rh, rcx, rcy = _whctrs(_box(ws, hs, cx, cy))
        for scale in scales:
            out.append(_box(rw * scale, rh * scale, rcx, rcy))
    return np.array(out, dtype=np.float64)


def nms_plus_one(dets, thresh):
    """Greedy NMS, +1 areas, suppress when IoU > thresh; dets [n, 5] float32."""
    x1, y1, x2, y2, scores = (dets[:, i] for i in range(5))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            iw = max(0.0, min(x2[i], x2[j]) - max(x1[i], x1[j]) + 1)
            ih = max(0.0, min(y2[i], y2[j]) - max(y1[i], y1[j]) + 1)
            inter = iw * ih
            if inter / (areas[i] + areas[j] - inter) <= thresh:
                rest.append(j)
        order = rest
    return np.array(keep, dtype=np.int64)


def proposals(fg_prob, deltas, image_size, stride, anchors, pre_nms, post_nms, nms_thresh):
    """The original test-time proposal operator for one image.

    fg_prob [A, Hf, Wf] (foreground probabilities), deltas [4A, Hf, Wf], image_size (H, W)
    of the resized image, anchors [A, 4] from generate_anchors. Returns [n, 4] float32 boxes
    in the +1 convention, in selection order (no random padding)."""
    num_anchors = anchors.shape[0]
    height, width = int(image_size[0] / stride), int(image_size[1] / stride)  # whole cells only
    fg_prob = fg_prob[:, :height, :width]
    deltas = deltas[:, :height, :width]
    boxes, scores = [], []
    for i in range(height):
        for j in range(width):
            for a in range(num_anchors):
                ax1, ay1, ax2, ay2 = anchors[a] + np.array([j, i, j, i]) * stride
                dx, dy, dw, dh = (float(deltas[4 * a + k, i, j]) for k in range(4))
                aw, ah = ax2 - ax1 + 1.0, ay2 - ay1 + 1.0
                cx, cy = ax1 + 0.5 * (aw - 1.0), ay1 + 0.5 * (ah - 1.0)
                pcx, pcy = dx * aw + cx, dy * ah + cy
                pw, ph = np.exp(dw) * aw, np.exp(dh) * ah
                box = [pcx - 0.5 * (pw - 1), pcy - 0.5 * (ph - 1), pcx + 0.5 * (pw - 1), pcy + 0.5 * (ph - 1)]
                box = [min(max(box[0], 0), image_size[1] - 1), min(max(box[1], 0), image_size[0] - 1),
                       min(max(box[2], 0), image_size[1] - 1), min(max(box[3], 0), image_size[0] - 1)]
                boxes.append(box)
                scores.append(fg_prob[a, i, j])
    boxes = np.array(boxes, dtype=np.float64)
    scores = np.array(scores, dtype=np.float32)
    order = np.argsort(-scores, kind="stable")[:pre_nms]
    boxes, scores = boxes[order], scores[order]
    dets = np.hstack([boxes, scores[:, None]]).astype(np.float32)
    keep = nms_plus_one(dets, nms_thresh)[:post_nms]
    return boxes[keep].astype(np.float32)


def decode(rois, deltas):
    """The original's bbox_pred in float32: rois [R, 4], deltas [R, 4] -> boxes [R, 4]."""
    rois, deltas = rois.astype(np.float32), deltas.astype(np.float32)
    w = rois[:, 2] - rois[:, 0] + np.float32(1)
    h = rois[:, 3] - rois[:, 1] + np.float32(1)
    cx = rois[:, 0] + np.float32(0.5) * (w - np.float32(1))
    cy = rois[:, 1] + np.float32(0.5) * (h - np.float32(1))
    pcx, pcy = deltas[:, 0] * w + cx, deltas[:, 1] * h + cy
    pw, ph = np.exp(deltas[:, 2]) * w, np.exp(deltas[:, 3]) * h
    half = np.float32(0.5)
    return np.stack([pcx - half * (pw - 1), pcy - half * (ph - 1), pcx + half * (pw - 1), pcy + half * (ph - 1)], 1)


def detections(rois, cls_prob, box_deltas, image_size, score_thresh=1e-3, nms_thresh=0.3, max_per_image=100):
    """The original test post-processing of one image.

    rois [R, 4] (+1 convention), cls_prob [R, 1 + C] (background first), box_deltas [R, 4]
    (class-agnostic: R-FCN's foreground deltas) or [R, 4 (1 + C)] (class-specific, background
    first: Faster R-CNN), target normalisation already folded in. Returns a list of
    (class 0..C-1, score, box [4]) in the resized image, +1 convention."""
    height, width = image_size

    def boxes_of(j):
        d = box_deltas if box_deltas.shape[1] == 4 else box_deltas[:, 4 * j: 4 * j + 4]
        b = decode(rois, d)
        return np.stack([np.clip(b[:, 0], 0, width - 1), np.clip(b[:, 1], 0, height - 1),
                         np.clip(b[:, 2], 0, width - 1), np.clip(b[:, 3], 0, height - 1)], 1)

    per_class = []
    for j in range(1, cls_prob.shape[1]):
        boxes = boxes_of(j)
        idx = np.where(cls_prob[:, j] > score_thresh)[0]
        dets = np.hstack([boxes[idx], cls_prob[idx, j:j + 1]]).astype(np.float32)
        per_class.append(dets[nms_plus_one(dets, nms_thresh)] if len(dets) else dets)
    scores = np.concatenate([d[:, 4] for d in per_class])
    if len(scores) > max_per_image:
        thresh = np.sort(scores)[-max_per_image]
        per_class = [d[d[:, 4] >= thresh] for d in per_class]
    return [(c, float(d[4]), d[:4]) for c, dets in enumerate(per_class) for d in dets]
