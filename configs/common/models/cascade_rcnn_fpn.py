"""Cascade R-CNN R-50-FPN (3 stages, IoU 0.5 / 0.6 / 0.7, class-agnostic boxes) as
configs/COCO-Detection/cascade_rcnn_R_50_FPN_1x.yaml builds it: detectron2's cascade piece
without the mask head, on dcn_det's ResNet stages, with DeformCascadeROIHeads. For deformable
RoI pooling each stage has its own pooler: ``model.roi_heads.box_pooler =
L(nn.ModuleList)(modules=[dpool, dpool, dpool])`` (configs/common/models/deform_poolers.py)."""
from detectron2.model_zoo import get_config

from dcn_det.modeling import DeformCascadeROIHeads

from .dcn_resnet import stages

model = get_config("common/models/cascade_rcnn.py").model
model.backbone.bottom_up.stages = stages
model.backbone.bottom_up.freeze_at = 2
model.roi_heads._target_ = DeformCascadeROIHeads
for key in ("mask_in_features", "mask_pooler", "mask_head"):
    del model.roi_heads[key]
model.proposal_generator.post_nms_topk = (2000, 1000)  # MODEL.RPN.POST_NMS_TOPK_TRAIN 2000
