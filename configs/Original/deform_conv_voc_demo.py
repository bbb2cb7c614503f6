# Twin of deform_conv_voc_demo.yaml: the authors' VOC demo model of deformable convolution (R-FCN
# R-101, 20 classes, deformable res5a-c with their border rule, plain PS-RoI pooling over whole
# pixels, 9 anchors per cell) on VOC 2007 test.
from detectron2.config import LazyCall as L
from detectron2.evaluation import PascalVOCDetectionEvaluator

from ..common.models.original_rfcn import model
from ..common.original_test import dataloader, train

model.proposal_generator.anchor_generator.sizes = [[128, 256, 512]]  # scales 8, 16, 32
model.proposal_generator.head.num_anchors = 9
model.backbone.stages.update(deform_on_per_stage=[False, False, False, True], deform_num_groups=1, border="dcnv1")
model.roi_heads.update(num_classes=20, integer_bins=True)
dataloader.test.dataset.names = "voc_2007_test"
dataloader.evaluator = L(PascalVOCDetectionEvaluator)(dataset_name="voc_2007_test")
