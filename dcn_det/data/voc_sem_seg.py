"""PASCAL VOC 2012 semantic segmentation for detectron2 (it registers VOC only for detection).

Registered by dcn_det.register(), read from $DETECTRON2_DATASETS/VOC2012:
  voc_2012_sem_seg_train   ImageSets/Segmentation/train.txt (1,464 images)
  voc_2012_sem_seg_val     ImageSets/Segmentation/val.txt   (1,449 images)
with labels from SegmentationClass/*.png (palette PNGs whose indices are the classes,
0 = background, 255 = the ignored object boundaries).

The SBD-augmented training set of the DeepLab and Deformable ConvNets papers (10,582 images)
is not part of VOC; after converting SBD's labels to PNGs (e.g. SegmentationClassAug/ and
ImageSets/Segmentation/train_aug.txt), register it under the name the configs suggest:

    from dcn_det.data.voc_sem_seg import register_voc_sem_seg
    register_voc_sem_seg("voc_2012_sem_seg_train_aug", "datasets/VOC2012", "train_aug", "SegmentationClassAug")
"""
import os
from typing import Dict, List

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets.pascal_voc import CLASS_NAMES

VOC_SEM_SEG_CLASSES = ("background",) + tuple(CLASS_NAMES)
IGNORE_LABEL = 255
BUILTIN_SPLITS = {"voc_2012_sem_seg_train": "train", "voc_2012_sem_seg_val": "val"}


def load_voc_sem_seg(dirname: str, split: str, label_dir: str = "SegmentationClass") -> List[Dict]:
    """detectron2 dicts (file_name, sem_seg_file_name, image_id) of the images listed in
    ``dirname/ImageSets/Segmentation/<split>.txt``."""
    with open(os.path.join(dirname, "ImageSets", "Segmentation", split + ".txt")) as f:
        ids = [line.strip() for line in f if line.strip()]
    return [
        {
            "file_name": os.path.join(dirname, "JPEGImages", image_id + ".jpg"),
            "sem_seg_file_name": os.path.join(dirname, label_dir, image_id + ".png"),
            "image_id": image_id,
        }
        for image_id in ids
    ]


def register_voc_sem_seg(name: str, dirname: str, split: str, label_dir: str = "SegmentationClass") -> None:
    """Register a VOC-layout semantic-segmentation split (evaluator "sem_seg", 21 classes)."""
    DatasetCatalog.register(name, lambda: load_voc_sem_seg(dirname, split, label_dir))
    MetadataCatalog.get(name).set(
        dirname=dirname,
        image_root=os.path.join(dirname, "JPEGImages"),
        sem_seg_root=os.path.join(dirname, label_dir),
        split=split,
        evaluator_type="sem_seg",
        stuff_classes=list(VOC_SEM_SEG_CLASSES),
        ignore_label=IGNORE_LABEL,
    )


def register_builtin_voc_sem_seg(root: str = "") -> None:
    """voc_2012_sem_seg_train / _val under ``root``/VOC2012 (default $DETECTRON2_DATASETS),
    leaving alone names that are already registered."""
    root = root or os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    for name, split in BUILTIN_SPLITS.items():
        if name not in DatasetCatalog.list():
            register_voc_sem_seg(name, os.path.join(root, "VOC2012"), split)
