"""End-to-end for the model-zoo families beyond Faster R-CNN / R-FCN: Mask R-CNN, Cascade R-CNN,
RetinaNet (DCNv1 and DCNv2) and DeepLabV3 with deformable res5 (VOC and Cityscapes configs), from
the repo's configs with their widths shrunk, trained from scratch for a few iterations with
dcn_det.engine.Trainer (its AdamW, its sem-seg mapper and LR schedule) on the generated shapes data
(boxes + mask polygons, or label PNGs), then evaluated with the evaluator dcn_det.engine picks:
COCO box and mask AP, or SemSegEvaluator's mIoU."""
import math
import random
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from detectron2.data import transforms as T
from detectron2.evaluation import COCOEvaluator, SemSegEvaluator, inference_on_dataset

from dcn_det.data.shapes import CLASSES, SEM_SEG_SUFFIX, SplitSpec, register_shapes_datasets
from dcn_det.engine import Trainer, build_evaluator
from dcn_det.layers import DeformRoIPool
from dcn_det.modeling import DeformBottleneck
from dcn_det.sem_seg_training import sem_seg_train_augmentations

from .synthetic import tiny_cfg, tiny_training_opts

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ITERATIONS = 8
FAMILIES = {
    "mask_rcnn_dcnv1": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_dconv_c3-c5_1x.yaml",
    "mask_rcnn_dcnv2": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml",
    "cascade_dcnv1": "COCO-Detection/cascade_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x.yaml",
    "cascade_dcnv2": "COCO-Detection/cascade_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml",
    "retinanet_dcnv1": "COCO-Detection/retinanet_R_50_FPN_dconv_c3-c5_1x.yaml",
    "retinanet_dcnv2": "COCO-Detection/retinanet_R_50_FPN_mdconv_c3-c5_1x.yaml",
    "deeplab_voc_dconv_c5": "PascalVOC-SemanticSegmentation/deeplab_v3_R_103_os16_mg124_poly_30k_bs16_dconv_c5.yaml",
    "deeplab_cityscapes_dconv_c5": "Cityscapes-SemanticSegmentation/deeplab_v3_R_103_os16_mg124_poly_90k_bs16_dconv_c5.yaml",
}
# What shrinking does not cover in synthetic.tiny_model_opts: the heads of these families.
SMALL_HEADS = [
    "MODEL.ROI_MASK_HEAD.CONV_DIM", "32",
    "MODEL.RETINANET.NUM_CLASSES", str(len(CLASSES)),
    "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0",  # as ROI_HEADS' in tiny_model_opts: always detections
    "MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(len(CLASSES) + 1),
    "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32",
    "MODEL.SEM_SEG_HEAD.ASPP_CHANNELS", "32",
    "MODEL.SEM_SEG_HEAD.NORM", "BN",
    "INPUT.CROP.SIZE", "(64, 64)",  # a multiple of the output stride 16 (and of the test feature size)
    "SOLVER.OPTIMIZER", "AdamW",
    "SOLVER.WEIGHT_DECAY", "0.0001",
]


@pytest.fixture(scope="module")
def shapes_split(tmp_path_factory):
    """8 generated images with boxes, mask polygons and label PNGs; yields the instances name
    (the semantic one is name + SEM_SEG_SUFFIX)."""
    name = f"dcn_test_zoo_shapes_{uuid.uuid4().hex[:8]}"
    register_shapes_datasets(str(tmp_path_factory.mktemp("shapes")), {name: SplitSpec(num_images=8, seed=21)})
    yield name
    for registered in (name, name + SEM_SEG_SUFFIX):
        DatasetCatalog.remove(registered)
        MetadataCatalog.remove(registered)


def _seed(seed=0):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dataset(family, shapes_split):
    return shapes_split + SEM_SEG_SUFFIX if family.startswith("deeplab") else shapes_split


@pytest.fixture(scope="module", params=list(FAMILIES))
def trained(request, shapes_split, tmp_path_factory):
    family, dataset = request.param, _dataset(request.param, shapes_split)
    output_dir = tmp_path_factory.mktemp(family)
    cfg = tiny_cfg(
        str(CONFIGS / FAMILIES[family]),
        ["MODEL.ROI_HEADS.NUM_CLASSES", str(len(CLASSES))]
        + SMALL_HEADS
        + tiny_training_opts(ITERATIONS)
        + ["DATASETS.TRAIN", f"('{dataset}',)", "DATASETS.TEST", "()", "OUTPUT_DIR", str(output_dir)],
    )
    _seed()
    trainer = Trainer(cfg)
    offsets_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "offset" in n}
    trainer.resume_or_load(resume=False)
    trainer.train()
    losses = [value for value, _ in trainer.storage.history("total_loss").values()]
    return family, cfg, trainer, losses, offsets_before, output_dir


def test_trains_every_iteration_with_finite_losses(trained):
    family, _, _, losses, _, _ = trained
    assert len(losses) == ITERATIONS and all(math.isfinite(v) for v in losses), (family, losses)


def test_deformable_offset_branches_are_trained(trained):
    """The offset branches start at zero and receive gradients: after training they moved."""
    family, _, trainer, _, before, _ = trained
    model = trainer.model
    assert any(isinstance(m, DeformBottleneck) for m in model.modules())
    assert before, "no offset parameters"
    moved = {n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])}
    conv_offsets = {n for n in before if "conv2_offset" in n}
    assert conv_offsets and conv_offsets <= moved, sorted(conv_offsets - moved)[:5]
    if any(isinstance(m, DeformRoIPool) for m in model.modules()):
        assert any("offset_fc" in n for n in moved)


def test_evaluates_with_the_evaluator_of_its_task(trained, shapes_split):
    family, cfg, trainer, _, _, output_dir = trained
    dataset = _dataset(family, shapes_split)
    evaluator = build_evaluator(cfg, dataset, str(output_dir / "eval"))
    results = inference_on_dataset(trainer.model, build_detection_test_loader(cfg, dataset), evaluator)
    if family.startswith("deeplab"):
        assert isinstance(evaluator, SemSegEvaluator)
        assert math.isfinite(results["sem_seg"]["mIoU"]) and 0 <= results["sem_seg"]["mIoU"] <= 100
        assert 0 <= results["sem_seg"]["pACC"] <= 100
        return
    assert isinstance(evaluator, COCOEvaluator)
    tasks = {"bbox", "segm"} if family.startswith("mask_rcnn") else {"bbox"}
    assert set(results) == tasks
    for task in tasks:
        assert all(math.isfinite(results[task][k]) and 0 <= results[task][k] <= 100 for k in ("AP", "AP50")), results[task]


@pytest.mark.parametrize("trained", [f for f in FAMILIES if f.startswith("deeplab")], indirect=True)
def test_semantic_segmentation_trains_with_the_deeplab_mapper_and_poly_schedule(trained):
    _, cfg, trainer, _, _, _ = trained
    assert type(trainer.scheduler).__name__ == "WarmupPolyLR"
    augmentations = [type(a) for a in sem_seg_train_augmentations(cfg)]
    assert T.RandomCrop_CategoryAreaConstraint in augmentations and T.ResizeShortestEdge in augmentations
