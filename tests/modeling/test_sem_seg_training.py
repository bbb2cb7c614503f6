"""dcn_det.sem_seg_training and how dcn_det.engine chooses by meta-architecture: label indices
(also from palette PNGs), the DeepLab project's crop and poly schedule, SemSegEvaluator."""
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import detection_utils
from detectron2.evaluation import COCOEvaluator, SemSegEvaluator
from PIL import Image

from dcn_det.data.voc_sem_seg import register_voc_sem_seg
from dcn_det.engine import Trainer, build_cfg, build_evaluator
from dcn_det.sem_seg_training import SemSegDatasetMapper

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
VOC_DEEPLAB = CONFIGS / "PascalVOC-SemanticSegmentation" / "deeplab_v3_R_103_os16_mg124_poly_30k_bs16_dconv_c5.yaml"
MASK_RCNN = CONFIGS / "COCO-InstanceSegmentation" / "mask_rcnn_R_50_FPN_dconv_c3-c5_1x.yaml"


@pytest.fixture
def voc_folder(tmp_path):
    """One 96x128 image whose palette label PNG holds classes 0 and 15 and the 255 boundary."""
    voc = tmp_path / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    Image.fromarray(np.full((96, 128, 3), 120, np.uint8)).save(voc / "JPEGImages" / "a.jpg")
    labels = np.zeros((96, 128), np.uint8)
    labels[20:80, 30:100] = 15
    labels[20, 30:100] = 255
    png = Image.fromarray(labels, mode="P")
    png.putpalette([0, 0, 0] + [200, 30, 90] * 255)  # class 15 and 255 share a colour
    png.save(voc / "SegmentationClass" / "a.png")
    (voc / "ImageSets/Segmentation/train.txt").write_text("a\n")
    name = "dcn_test_voc_sem_seg"
    register_voc_sem_seg(name, str(voc), "train")
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_train_mapper_reads_palette_labels_as_class_indices(voc_folder):
    (record,) = DatasetCatalog.get(voc_folder)
    cfg = build_cfg(str(VOC_DEEPLAB), ["INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.CROP.SIZE", "(64, 64)"])
    labels = SemSegDatasetMapper(cfg)(record)["sem_seg"]
    assert labels.dtype == torch.int64 and labels.shape == (64, 64)
    assert set(labels.unique().tolist()) <= {0, 15, 255} and 15 in labels
    # What detectron2's own DatasetMapper reads (luminance): not the classes.
    grey = detection_utils.read_image(record["sem_seg_file_name"], "L")
    assert 15 not in np.unique(grey)


def test_evaluator_is_chosen_by_meta_architecture(voc_folder, tmp_path):
    assert MetadataCatalog.get(voc_folder).evaluator_type == "sem_seg"
    assert isinstance(build_evaluator(build_cfg(str(VOC_DEEPLAB)), voc_folder, str(tmp_path)), SemSegEvaluator)
    del MetadataCatalog.get(voc_folder).evaluator_type  # a set registered without one: the model decides
    assert isinstance(build_evaluator(build_cfg(str(VOC_DEEPLAB)), voc_folder, str(tmp_path)), SemSegEvaluator)


def test_detection_configs_keep_the_coco_evaluator(coco_shapes, tmp_path):
    assert isinstance(build_evaluator(build_cfg(str(MASK_RCNN)), coco_shapes, str(tmp_path)), COCOEvaluator)


@pytest.mark.parametrize("config, scheduler", [(VOC_DEEPLAB, "WarmupPolyLR"), (MASK_RCNN, "LRMultiplier")])
def test_trainer_builds_the_lr_schedule_the_config_names(config, scheduler):
    cfg = build_cfg(str(config))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    assert type(Trainer.build_lr_scheduler(cfg, optimizer)).__name__ == scheduler
