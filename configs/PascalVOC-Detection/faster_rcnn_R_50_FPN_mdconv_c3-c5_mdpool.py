# Twin of faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool.yaml: DCNv2 (modulated deformable convs in
# res3-res5, modulated deformable RoI pooling) on VOC 07+12.
from ..common.models.faster_rcnn_fpn import mdpool
from .faster_rcnn_R_50_FPN import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.deform_on_per_stage = [False, True, True, True]  # res3-res5
model.backbone.bottom_up.stages.deform_modulated = True
model.roi_heads.box_pooler = mdpool
