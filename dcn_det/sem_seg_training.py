"""What training and evaluating a semantic-segmentation model (detectron2's
``SemanticSegmentor``, e.g. the DeepLab project's heads) needs beyond detection's defaults,
as the DeepLab project's own train_net does it: a data mapper with random crops that keep
any one category under INPUT.CROP.SINGLE_CATEGORY_MAX_AREA, the poly learning-rate schedule
(SOLVER.LR_SCHEDULER_NAME "WarmupPolyLR"), and mIoU through SemSegEvaluator.

Labels are read as class indices, also from palette PNGs (PASCAL VOC's SegmentationClass):
detectron2's DatasetMapper converts label files to luminance ("L"), which turns palette
indices into grey levels.

The task is decided by MODEL.META_ARCHITECTURE, not by file or data-set names.
"""
import copy
from typing import Dict, List

import numpy as np
import torch
from detectron2.config import CfgNode, configurable
from detectron2.data import build_detection_train_loader
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.evaluation import SemSegEvaluator
from detectron2.utils.file_io import PathManager
from PIL import Image

SEMANTIC_META_ARCHITECTURES = ("SemanticSegmentor",)


def is_semantic_segmentation(cfg: CfgNode) -> bool:
    return cfg.MODEL.META_ARCHITECTURE in SEMANTIC_META_ARCHITECTURES


def sem_seg_train_augmentations(cfg: CfgNode) -> List[T.Augmentation]:
    """Resize (INPUT.MIN_SIZE_TRAIN / MAX_SIZE_TRAIN / MIN_SIZE_TRAIN_SAMPLING), a random crop
    (INPUT.CROP.*) whose largest category covers at most SINGLE_CATEGORY_MAX_AREA, flip
    (INPUT.RANDOM_FLIP)."""
    augmentations = [
        T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING)
    ]
    if cfg.INPUT.CROP.ENABLED:
        augmentations.append(
            T.RandomCrop_CategoryAreaConstraint(
                cfg.INPUT.CROP.TYPE,
                cfg.INPUT.CROP.SIZE,
                cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA,
                cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            )
        )
    if cfg.INPUT.RANDOM_FLIP != "none":
        augmentations.append(
            T.RandomFlip(horizontal=cfg.INPUT.RANDOM_FLIP == "horizontal", vertical=cfg.INPUT.RANDOM_FLIP == "vertical")
        )
    return augmentations


class SemSegDatasetMapper:
    """Training mapper for semantic segmentation: image (INPUT.FORMAT) and label indices
    through the same augmentations -> ``{"image": [C, H, W] uint8, "sem_seg": [H, W] long}``."""

    @configurable
    def __init__(self, *, augmentations: List[T.Augmentation], image_format: str):
        self.augmentations = T.AugmentationList(list(augmentations))
        self.image_format = image_format

    @classmethod
    def from_config(cls, cfg: CfgNode):
        return {"augmentations": sem_seg_train_augmentations(cfg), "image_format": cfg.INPUT.FORMAT}

    def __call__(self, dataset_dict: Dict) -> Dict:
        dataset_dict = copy.deepcopy(dataset_dict)
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)
        aug_input = T.AugInput(image, sem_seg=load_labels(dataset_dict.pop("sem_seg_file_name"), dtype=np.uint8))
        self.augmentations(aug_input)
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        dataset_dict["sem_seg"] = torch.as_tensor(aug_input.sem_seg.astype(np.int64))
        return dataset_dict


def build_sem_seg_train_loader(cfg: CfgNode):
    return build_detection_train_loader(cfg, mapper=SemSegDatasetMapper(cfg))


def load_labels(filename: str, dtype=None) -> np.ndarray:
    """A label PNG as an array of class indices (palette PNGs give their indices)."""
    with PathManager.open(filename, "rb") as f:
        return np.asarray(Image.open(f), dtype=dtype)


def build_sem_seg_evaluator(dataset_name: str, output_folder: str) -> SemSegEvaluator:
    """mIoU, fwIoU, per-class IoU and pixel accuracy (needs the data set's stuff_classes and
    ignore_label metadata); also for Cityscapes, whose own evaluator needs cityscapesscripts.
    Labels are read by :func:`load_labels`: some detectron2 versions' default reader calls
    ``np.array(..., copy=False)``, which numpy 2 rejects for PIL images."""
    return SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder, sem_seg_loading_fn=load_labels)


def build_lr_scheduler(cfg: CfgNode, optimizer):
    """The DeepLab project's scheduler builder: "WarmupPolyLR" (SOLVER.POLY_LR_POWER,
    POLY_LR_CONSTANT_ENDING), otherwise detectron2's (WarmupMultiStepLR, WarmupCosineLR)."""
    from detectron2.projects.deeplab import build_lr_scheduler as build_deeplab_lr_scheduler

    return build_deeplab_lr_scheduler(cfg, optimizer)
