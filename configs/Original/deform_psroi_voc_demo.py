# Twin of deform_psroi_voc_demo.yaml: the authors' VOC demo model of deformable PS-RoI pooling
# (R-FCN R-101, 20 classes, 3x3 deformable position-sensitive bins with per-class offsets, plain
# backbone, 9 anchors per cell) on VOC 2007 test.
from detectron2.config import LazyCall as L
from detectron2.evaluation import PascalVOCDetectionEvaluator

from ..common.models.original_rfcn import model
from ..common.original_test import dataloader, train

model.proposal_generator.anchor_generator.sizes = [[128, 256, 512]]  # scales 8, 16, 32
model.proposal_generator.head.num_anchors = 9
model.roi_heads.update(num_classes=20, group_size=3, deformable=True, class_agnostic_offsets=False, trans_std=0.1)
dataloader.test.dataset.names = "voc_2007_test"
dataloader.evaluator = L(PascalVOCDetectionEvaluator)(dataset_name="voc_2007_test")
