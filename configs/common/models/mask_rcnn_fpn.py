"""Mask R-CNN R-50-FPN as configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml builds it:
detectron2's own piece on dcn_det's ResNet stages (deformable where
``model.backbone.bottom_up.stages.deform_on_per_stage`` says) with DeformStandardROIHeads (whose
``box_pooler`` may be a deformable one, configs/common/models/deform_poolers.py)."""
from detectron2.model_zoo import get_config

from dcn_det.modeling import DeformStandardROIHeads

from .dcn_resnet import stages

model = get_config("common/models/mask_rcnn_fpn.py").model
model.backbone.bottom_up.stages = stages
model.backbone.bottom_up.freeze_at = 2
model.roi_heads._target_ = DeformStandardROIHeads
