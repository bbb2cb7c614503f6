"""The authors' released MXNet detectors (configs/Original/Base-Original.yaml), without their RoI
head: ResNet-v1-101 with the ceil-mode stem pool, frozen BN, res5 dilated (stride 16) and kept in
the backbone, RGB input with the authors' pixel means, and their RPN on res4 (one 3x3 conv of
512 channels, rounded anchors, partial last cells dropped, their proposal rules).
original_rfcn.py / original_rcnn.py add the R-FCN and Faster R-CNN heads."""
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config
from detectron2.modeling.backbone import BasicStem

from dcn_det.modeling import CeilModeStem, OriginalRPN, RoundedAnchorGenerator

from .dcn_resnet import stages

model = get_config("common/models/mask_rcnn_c4.py").model
model.backbone.stem = L(CeilModeStem)(stem=L(BasicStem)(in_channels=3, out_channels=64, norm="FrozenBN"))
model.backbone.stages = stages
model.backbone.stages.update(depth=101, res5_dilation=2)
model.backbone.out_features = ["res4", "res5"]
model.backbone.freeze_at = 2
rpn = model.proposal_generator
rpn._target_ = OriginalRPN
rpn.update(drop_partial_cells=True, proposal_rules="original")  # MODEL.RPN.DROP_PARTIAL_CELLS, PROPOSAL_RULES
rpn.head.update(num_anchors=12, conv_dims=[512])
rpn.anchor_generator = L(RoundedAnchorGenerator)(
    sizes=[[64, 128, 256, 512]],  # scales 4, 8, 16, 32 at stride 16
    aspect_ratios=[[0.5, 1.0, 2.0]],
    strides=[16],
)
rpn.pre_nms_topk = (12000, 6000)
rpn.post_nms_topk = (2000, 300)
model.pixel_mean = [123.15, 115.90, 103.06]  # RGB
model.pixel_std = [1.0, 1.0, 1.0]
model.input_format = "RGB"
model.roi_heads = None  # set by original_rfcn.py / original_rcnn.py
