"""A generated data set for the demo and the tests: shapes and digits under strong
geometric transformations, on textured backgrounds, with boxes, instance masks and
semantic labels.

Every object is drawn in a canonical frame and warped by a random affine transform
(scale, aspect, rotation, shear), so its box is exact, and its instance mask is its
canonical outline warped by the same transform (a COCO polygon: exact for the polygonal
shapes, a 64-gon for the circle, the traced outline of the rendered digit). Masks are
amodal: the 10% of an object that a later one may hide stays in its mask. The semantic
label of a pixel is the class of the object drawn on top there (0 = background). Splits:
  shapes_dcn_train       transformations in the training ranges
  shapes_dcn_val         same ranges, other images
  shapes_dcn_val_scaled  scales, rotations and shears beyond the training ranges (the
                         "unseen transformations" test of the Deformable ConvNets papers)
Each is registered twice: as a COCO instances data set (boxes and masks) and, with the
suffix "_sem_seg", as a semantic-segmentation data set (label PNGs, evaluator "sem_seg").
Images are generated deterministically (seeded per split and image) on first use, in COCO
format, into a cache folder (default $DETECTRON2_DATASETS/shapes_dcn), written atomically.
"""
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

logger = logging.getLogger(__name__)

CLASSES = ("circle", "triangle", "square", "star", "cross", "two", "seven")
GENERATOR_VERSION = 2  # bump when the drawing changes, so caches are regenerated
# The OpenCV release whose drawing defines the data (requirements.txt pins it): the digit
# classes are rendered with cv2.putText, whose glyphs changed in OpenCV 5.1.
OPENCV_DRAWING_VERSION = "5.0"
# Bump when only what is written beside the images changes (masks, label PNGs): caches are
# rewritten, images and boxes stay the same.
LABELS_VERSION = 1
SEM_SEG_SUFFIX = "_sem_seg"
SEM_SEG_CLASSES = ("background",) + CLASSES
IGNORE_LABEL = 255
_CANON = 64  # canonical drawing size


@dataclass(frozen=True)
class SplitSpec:
    """How one split is drawn. Ranges are (low, high); scale is the object size relative
    to the image's shorter side."""

    num_images: int
    seed: int
    scale: Tuple[float, float] = (0.3, 0.6)
    aspect: Tuple[float, float] = (0.75, 1.33)
    rotation_deg: Tuple[float, float] = (-30.0, 30.0)
    shear: Tuple[float, float] = (-0.2, 0.2)
    # Extra ranges drawn with probability 1/2 instead of the main ones (out-of-range splits).
    scale_extra: Optional[Tuple[float, float]] = None
    image_size: Tuple[int, int] = (128, 128)  # (height, width)
    objects: Tuple[int, int] = (1, 3)


SPLITS: Dict[str, SplitSpec] = {
    "shapes_dcn_train": SplitSpec(num_images=1500, seed=1),
    "shapes_dcn_val": SplitSpec(num_images=200, seed=2),
    "shapes_dcn_val_scaled": SplitSpec(
        num_images=200,
        seed=3,
        scale=(0.2, 0.28),
        scale_extra=(0.62, 0.75),
        rotation_deg=(-50.0, 50.0),
        shear=(-0.3, 0.3),
    ),
}


_C, _R = _CANON / 2, _CANON * 0.46  # canonical centre and radius


def _polygons(cls: str) -> List[List[Tuple[float, float]]]:
    """Outline(s) of a polygonal class in canonical pixel coordinates (pixel centres at
    integers); [] for the circle and the digits."""
    c, r = _C, _R
    if cls == "triangle":
        return [[(c + r * math.cos(a), c + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]]
    if cls == "square":
        return [[(c - r * 0.8, c - r * 0.8), (c + r * 0.8, c - r * 0.8), (c + r * 0.8, c + r * 0.8), (c - r * 0.8, c + r * 0.8)]]
    if cls == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.42
            a = -math.pi / 2 + i * math.pi / 5
            pts.append((c + rad * math.cos(a), c + rad * math.sin(a)))
        return [pts]
    if cls == "cross":
        w = r * 0.32
        return [[(c - w, c - r), (c + w, c - r), (c + w, c + r), (c - w, c + r)], [(c - r, c - w), (c + r, c - w), (c + r, c + w), (c - r, c + w)]]
    return []


def _canonical_mask(cls: str) -> np.ndarray:
    """The class's shape, white on black, filling a _CANON x _CANON square."""
    m = np.zeros((_CANON, _CANON), np.uint8)
    c, r = _C, _R
    if cls == "circle":
        cv2.circle(m, (_CANON // 2, _CANON // 2), int(r), 255, -1, lineType=cv2.LINE_AA)
    elif _polygons(cls):
        for points in _polygons(cls):
            cv2.fillPoly(m, [np.round(np.array(points)).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    elif cls in ("two", "seven"):
        text = "2" if cls == "two" else "7"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 2.0, 7)
        cv2.putText(m, text, (int(c - tw / 2), int(c + th / 2)), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 255, 7, cv2.LINE_AA)
    else:
        raise ValueError(f"unknown class {cls!r}")
    return m


_MASKS = {cls: _canonical_mask(cls) for cls in CLASSES}


def _canonical_outlines(cls: str) -> List[np.ndarray]:
    """[K, 2] outlines (x, y) in canonical pixel coordinates: the drawn polygons (as drawn,
    rounded to pixels), a 64-gon for the circle, the traced boundary of a rendered digit."""
    if cls == "circle":
        angles = np.arange(64) * (2 * math.pi / 64)
        radius = int(_R)
        return [np.stack([_CANON // 2 + radius * np.cos(angles), _CANON // 2 + radius * np.sin(angles)], axis=1)]
    if _polygons(cls):
        return [np.round(np.array(points)) for points in _polygons(cls)]
    contours, _ = cv2.findContours((_MASKS[cls] > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c[:, 0, :].astype(np.float64) for c in contours if len(c) >= 3]


_OUTLINES = {cls: _canonical_outlines(cls) for cls in CLASSES}


def _warped_polygons(cls: str, affine: np.ndarray) -> List[List[float]]:
    """COCO polygons (flat x, y lists; pixel edges at integers, so +0.5 from centres) of the
    class's outline under the 2x3 ``affine`` that cv2.warpAffine applied to its mask."""
    polygons = []
    for outline in _OUTLINES[cls]:
        points = outline @ affine[:, :2].T + affine[:, 2] + 0.5
        polygons.append([round(float(v), 2) for v in points.reshape(-1)])
    return polygons


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour gradient + oriented stripes + noise: texture the detector must ignore."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    angle = rng.uniform(0, math.pi)
    freq = rng.uniform(0.05, 0.35)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * freq)
    for ch in range(3):
        gx, gy = rng.uniform(-0.3, 0.3, size=2)
        img[..., ch] = rng.uniform(60, 190) + gx * xx + gy * yy + rng.uniform(10, 35) * stripes
    img += rng.normal(0, 12, size=img.shape)
    return np.clip(img, 0, 255)


def _affine(rng: np.random.Generator, spec: SplitSpec, h: int, w: int) -> np.ndarray:
    """2x3 matrix taking the canonical square to a random pose inside the image."""
    lo, hi = spec.scale
    if spec.scale_extra is not None and rng.random() < 0.5:
        lo, hi = spec.scale_extra
    size = rng.uniform(lo, hi) * min(h, w)
    aspect = math.exp(rng.uniform(math.log(spec.aspect[0]), math.log(spec.aspect[1])))
    sx, sy = size * math.sqrt(aspect) / _CANON, size / math.sqrt(aspect) / _CANON
    theta = math.radians(rng.uniform(*spec.rotation_deg))
    shear = rng.uniform(*spec.shear)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    lin = rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    extent = np.abs(lin).sum(axis=1) * _CANON / 2  # half-size of the warped square's box
    cx = rng.uniform(min(extent[0], w / 2), max(w - extent[0], w / 2))
    cy = rng.uniform(min(extent[1], h / 2), max(h - extent[1], h / 2))
    offset = np.array([cx, cy]) - lin @ np.array([_CANON / 2, _CANON / 2])
    return np.hstack([lin, offset[:, None]])


def draw_image(spec: SplitSpec, index: int) -> Tuple[np.ndarray, List[dict]]:
    """Image ``index`` of a split (BGR uint8) and its annotations (COCO dicts without ids,
    with "segmentation" polygons)."""
    image, annotations, _ = draw_image_and_labels(spec, index)
    return image, annotations


def draw_image_and_labels(spec: SplitSpec, index: int) -> Tuple[np.ndarray, List[dict], np.ndarray]:
    """:func:`draw_image` and the semantic labels ``[H, W]`` uint8 (0 background, c + 1 for
    CLASSES[c], the object drawn last wins)."""
    rng = np.random.default_rng([GENERATOR_VERSION, spec.seed, index])
    h, w = spec.image_size
    img = _background(rng, h, w)
    labels = np.zeros((h, w), np.uint8)
    occupied = np.zeros((h, w), np.uint8)
    drawn = []  # visible masks of the objects drawn so far
    annotations = []
    for _ in range(int(rng.integers(spec.objects[0], spec.objects[1] + 1))):
        cls_id = int(rng.integers(len(CLASSES)))
        affine = _affine(rng, spec, h, w)
        mask = cv2.warpAffine(_MASKS[CLASSES[cls_id]], affine, (w, h), flags=cv2.INTER_LINEAR)
        visible = mask > 127
        # Skip objects that overlap an earlier one by more than 10% of either: boxes stay
        # truthful (an object is never mostly hidden under its full box).
        if visible.sum() < 30 or (occupied[visible] > 0).mean() > 0.1:
            continue
        if any((earlier & visible).sum() > 0.1 * earlier.sum() for earlier in drawn):
            continue
        drawn.append(visible)
        color = rng.uniform(0, 255, size=3)
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        img = img * (1 - alpha) + color * alpha
        occupied |= visible
        labels[visible] = cls_id + 1
        ys, xs = np.nonzero(visible)
        x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
        annotations.append(
            {
                "category_id": cls_id + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": float(visible.sum()),
                "iscrowd": 0,
                "segmentation": _warped_polygons(CLASSES[cls_id], affine),
            }
        )
    return np.clip(img, 0, 255).astype(np.uint8), annotations, labels


def _cached_version(json_file: str, key: str = "version") -> Optional[int]:
    """GENERATOR_VERSION (or, with key "labels_version", LABELS_VERSION) that wrote
    ``json_file`` (None if unreadable or absent): such a cache is regenerated."""
    try:
        with open(json_file) as f:
            return json.load(f).get("info", {}).get(key)
    except (OSError, ValueError):
        return None


def _cache_is_current(json_file: str) -> bool:
    return (
        os.path.exists(json_file)
        and _cached_version(json_file) == GENERATOR_VERSION
        and _cached_version(json_file, "labels_version") == LABELS_VERSION
    )


def split_dir(root: str, name: str) -> str:
    return os.path.join(root, name)


def generate_split(name: str, root: str, spec: Optional[SplitSpec] = None, progress: bool = True) -> str:
    """Write split ``name`` (images/*.jpg, annotations.json with boxes and mask polygons,
    sem_seg/*.png labels) under ``root`` unless it is already there; returns the annotation
    file. Written to a temporary folder and renamed, so an
    interrupted run leaves nothing half-written."""
    spec = spec or SPLITS[name]
    final = split_dir(root, name)
    json_file = os.path.join(final, "annotations.json")
    if _cache_is_current(json_file):
        return json_file
    if not cv2.__version__.startswith(OPENCV_DRAWING_VERSION + "."):
        logger.warning(
            "OpenCV %s draws the shapes data differently from OpenCV %s (digit glyphs): "
            "the images, and the demo's numbers, will not be those documented",
            cv2.__version__, OPENCV_DRAWING_VERSION,
        )
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}-", dir=root)
    try:
        os.makedirs(os.path.join(tmp, "images"))
        os.makedirs(os.path.join(tmp, "sem_seg"))
        images, annotations = [], []
        indices = range(spec.num_images)
        if progress:
            from tqdm import tqdm

            indices = tqdm(indices, desc=f"generating {name}", unit="img", mininterval=1.0)
        for i in indices:
            img, anns, labels = draw_image_and_labels(spec, i)
            file_name = f"{i:06d}.jpg"
            cv2.imwrite(os.path.join(tmp, "images", file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            cv2.imwrite(os.path.join(tmp, "sem_seg", f"{i:06d}.png"), labels)
            images.append({"id": i + 1, "file_name": file_name, "height": img.shape[0], "width": img.shape[1]})
            for a in anns:
                annotations.append({**a, "id": len(annotations) + 1, "image_id": i + 1})
        coco = {
            "info": {
                "description": f"dcn_det generated shapes ({name})",
                "version": GENERATOR_VERSION,
                "labels_version": LABELS_VERSION,
            },
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(CLASSES)],
        }
        with open(os.path.join(tmp, "annotations.json"), "w") as f:
            json.dump(coco, f)
        if os.path.exists(final):  # stale: no annotations.json (interrupted run) or older versions
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("generated %s: %d images, %d objects in %s", name, spec.num_images, len(annotations), final)
    return json_file


def default_root() -> str:
    return os.path.join(os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets")), "shapes_dcn")


def register_shapes_datasets(root: Optional[str] = None, splits: Optional[Dict[str, SplitSpec]] = None) -> None:
    """Register the splits in detectron2's catalogs: ``name`` in COCO format (boxes and
    masks, evaluator "coco") and ``name + SEM_SEG_SUFFIX`` for semantic segmentation (label
    PNGs, evaluator "sem_seg"). Images are generated on first use (DatasetCatalog.get or
    :func:`prepare`)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import load_coco_json, load_sem_seg

    root = root or default_root()
    for name, spec in (splits or SPLITS).items():
        sem_seg_name = name + SEM_SEG_SUFFIX
        for registered in (name, sem_seg_name):
            if registered in DatasetCatalog.list():
                DatasetCatalog.remove(registered)
                MetadataCatalog.remove(registered)
        json_file = os.path.join(split_dir(root, name), "annotations.json")
        image_root = os.path.join(split_dir(root, name), "images")
        sem_seg_root = os.path.join(split_dir(root, name), "sem_seg")

        def load(name=name, spec=spec, json_file=json_file, image_root=image_root):
            generate_split(name, root, spec)
            return load_coco_json(json_file, image_root, name)

        def load_labels(name=name, spec=spec, image_root=image_root, sem_seg_root=sem_seg_root):
            generate_split(name, root, spec)
            return load_sem_seg(sem_seg_root, image_root, gt_ext="png", image_ext="jpg")

        DatasetCatalog.register(name, load)
        MetadataCatalog.get(name).set(
            json_file=json_file, image_root=image_root, evaluator_type="coco", thing_classes=list(CLASSES), generator_spec=spec
        )
        DatasetCatalog.register(sem_seg_name, load_labels)
        MetadataCatalog.get(sem_seg_name).set(
            json_file=json_file,  # where prepare() finds the split
            image_root=image_root,
            sem_seg_root=sem_seg_root,
            evaluator_type="sem_seg",
            stuff_classes=list(SEM_SEG_CLASSES),
            ignore_label=IGNORE_LABEL,
            generator_spec=spec,
        )


def prepare(names, root: Optional[str] = None) -> None:
    """Generate the named registered splits now (with a progress bar) if they are missing."""
    from detectron2.data import MetadataCatalog

    for name in names:
        meta = MetadataCatalog.get(name)
        spec = meta.get("generator_spec")
        if spec is None:
            continue  # not a generated data set
        generate_split(os.path.basename(os.path.dirname(meta.json_file)), os.path.dirname(os.path.dirname(meta.json_file)), spec)
