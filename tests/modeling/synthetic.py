"""Tiny synthetic detection data sets written to disk (COCO-format JSON, PASCAL VOC XML), and
config overrides that shrink dcn_det's models so that they train for a few iterations on a CPU.

Images are noisy grey backgrounds with 1-3 filled shapes; the class decides the shape and
colour (0: red rectangle, 1: green ellipse, 2: blue rectangle with a hole), so a detector can
learn them in a few dozen iterations.
"""
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 128, 160
COLOURS = ((220, 40, 40), (40, 200, 60), (50, 70, 230))


@dataclass
class SyntheticImage:
    file_stem: str
    pixels: np.ndarray  # [H, W, 3] uint8
    boxes: List[Tuple[int, int, int, int]]  # x0, y0, x1, y1 (exclusive), pixels
    classes: List[int]


def _draw(rng: np.random.Generator, index: int, num_classes: int) -> SyntheticImage:
    image = rng.normal(110, 12, size=(HEIGHT, WIDTH, 3)).clip(0, 255)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    boxes, classes = [], []
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(20):
            w, h = (int(v) for v in rng.integers(28, 64, size=2))
            x0, y0 = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
            box = (x0, y0, x0 + w, y0 + h)
            if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in boxes):
                break
        else:
            continue
        cls = int(rng.integers(0, num_classes))
        inside = (xx >= box[0]) & (xx < box[2]) & (yy >= box[1]) & (yy < box[3])
        if cls == 1:  # ellipse touching the box sides
            cx, cy = (box[0] + box[2] - 1) / 2, (box[1] + box[3] - 1) / 2
            inside &= ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1.0
        elif cls == 2:  # frame
            inside &= ~((xx >= box[0] + w // 4) & (xx < box[2] - w // 4) & (yy >= box[1] + h // 4) & (yy < box[3] - h // 4))
        image[inside] = COLOURS[cls % len(COLOURS)]
        boxes.append(box)
        classes.append(cls)
    return SyntheticImage(f"{index:06d}", image.astype(np.uint8), boxes, classes)


def draw_images(num_images: int, num_classes: int = 3, seed: int = 0) -> List[SyntheticImage]:
    rng = np.random.default_rng(seed)
    return [_draw(rng, i, num_classes) for i in range(num_images)]


def write_coco(
    json_file: str,
    image_root: str,
    images: Sequence[SyntheticImage],
    categories: Sequence[dict],
    category_ids: Sequence[int] = (),
    with_annotations: bool = True,
) -> None:
    """Write the images as JPEGs and a COCO instances JSON. Class c gets category id
    ``category_ids[c]`` (default: categories[c]["id"]). ``with_annotations=False`` writes a
    test-dev style file: images and categories, no "annotations" key."""
    category_ids = list(category_ids) or [c["id"] for c in categories]
    os.makedirs(image_root, exist_ok=True)
    os.makedirs(os.path.dirname(json_file), exist_ok=True)
    entries, annotations = [], []
    for image_id, im in enumerate(images, start=1):
        name = im.file_stem + ".jpg"
        Image.fromarray(im.pixels).save(os.path.join(image_root, name), quality=95)
        entries.append({"id": image_id, "file_name": name, "height": HEIGHT, "width": WIDTH})
        for (x0, y0, x1, y1), cls in zip(im.boxes, im.classes):
            w, h = x1 - x0, y1 - y0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_ids[cls],
                    "bbox": [x0, y0, w, h],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
    data = {"images": entries, "categories": list(categories)}
    if with_annotations:
        data["annotations"] = annotations
    with open(json_file, "w") as f:
        json.dump(data, f)


def write_voc(dirname: str, images: Sequence[SyntheticImage], class_names: Sequence[str], split: str) -> None:
    """A VOC2007-style folder: Annotations/*.xml, JPEGImages/*.jpg, ImageSets/Main/<split>.txt.
    Boxes use VOC's 1-based inclusive pixel coordinates."""
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(dirname, sub), exist_ok=True)
    for im in images:
        Image.fromarray(im.pixels).save(os.path.join(dirname, "JPEGImages", im.file_stem + ".jpg"), quality=95)
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = im.file_stem + ".jpg"
        size = ET.SubElement(root, "size")
        for tag, value in (("width", WIDTH), ("height", HEIGHT), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        for (x0, y0, x1, y1), cls in zip(im.boxes, im.classes):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = class_names[cls]
            ET.SubElement(obj, "pose").text = "Unspecified"
            ET.SubElement(obj, "truncated").text = "0"
            ET.SubElement(obj, "difficult").text = "0"
            bndbox = ET.SubElement(obj, "bndbox")
            for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
                ET.SubElement(bndbox, tag).text = str(value)
        ET.ElementTree(root).write(os.path.join(dirname, "Annotations", im.file_stem + ".xml"))
    with open(os.path.join(dirname, "ImageSets", "Main", split + ".txt"), "w") as f:
        f.write("\n".join(im.file_stem for im in images) + "\n")


def tiny_model_opts(num_classes: int = 3) -> List[str]:
    """Overrides that keep a config's architecture (depth, stages, deformable options, head
    layout) but shrink every width, use trainable BatchNorm (FrozenBN with random weights
    diverges) and small images, so that a model trains on a CPU in seconds.

    SCORE_THRESH_TEST 0: a model trained for a few iterations from scratch gives its
    foreground classes scores of 0.01-0.1 (background dominates its RoIs), and whether any
    detection clears a threshold such as 0.01 then depends on rounding (it flipped with the CPU vendor, the thread count and the CPU instruction set:
    docs/reliability.md); with 0 every proposal is a candidate and evaluation always has
    detections to score."""
    return [
        "MODEL.DEVICE", "cpu",
        "MODEL.WEIGHTS", "",
        "MODEL.BACKBONE.FREEZE_AT", "0",
        "MODEL.RESNETS.NORM", "BN",
        "MODEL.RESNETS.STEM_OUT_CHANNELS", "16",
        "MODEL.RESNETS.RES2_OUT_CHANNELS", "32",
        "MODEL.RESNETS.WIDTH_PER_GROUP", "8",
        "MODEL.FPN.OUT_CHANNELS", "32",
        "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
        "MODEL.RFCN.HIDDEN_DIM", "64",
        "MODEL.RFCN.OHEM_ROIS", "16",
        "MODEL.ROI_HEADS.NUM_CLASSES", str(num_classes),
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
        "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "64",
        "MODEL.RPN.POST_NMS_TOPK_TRAIN", "256",
        "MODEL.RPN.POST_NMS_TOPK_TEST", "100",
        "INPUT.MIN_SIZE_TRAIN", "(128,)",
        "INPUT.MAX_SIZE_TRAIN", "192",
        "INPUT.MIN_SIZE_TEST", "128",
        "INPUT.MAX_SIZE_TEST", "192",
        "DATALOADER.NUM_WORKERS", "0",
        "TEST.EVAL_PERIOD", "0",
    ]


def tiny_training_opts(max_iter: int, base_lr: float = 0.001) -> List[str]:
    """A short schedule (no LR steps, no checkpoints before the end) for 2 images per batch.
    POSITIVE_FRACTION 0.25 (detectron2's default) also for R-FCN, whose config scores every
    proposal (1.0): otherwise the share of foreground RoIs, and with it the box loss, grows
    as the RPN learns and hides the progress of a 40-iteration run."""
    return [
        "SOLVER.IMS_PER_BATCH", "2",
        "SOLVER.BASE_LR", str(base_lr),
        "SOLVER.WARMUP_ITERS", "5",
        "SOLVER.STEPS", "()",
        "SOLVER.MAX_ITER", str(max_iter),
        "SOLVER.CHECKPOINT_PERIOD", "100000",
        "MODEL.ROI_HEADS.POSITIVE_FRACTION", "0.25",
    ]


def tiny_cfg(config_file: str, opts: Sequence[str] = ()):
    """dcn_det.engine.build_cfg(config_file) with :func:`tiny_model_opts` and ``opts``; the
    deformable-pooling offset fc layers keep their number but get width 64."""
    from dcn_det.engine import build_cfg

    cfg = build_cfg(config_file, tiny_model_opts() + list(opts))
    cfg.MODEL.DCN.POOL_OFFSET_FC_DIMS = [64] * len(cfg.MODEL.DCN.POOL_OFFSET_FC_DIMS)
    return cfg
