# Twin of faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml: DCNv2, modulated deformable convs in
# res3-res5 and modulated deformable RoI pooling.
from ..common.coco_1x import dataloader, lr_multiplier, optimizer, train
from ..common.models.faster_rcnn_fpn import mdpool, model

model.backbone.bottom_up.stages.deform_on_per_stage = [False, True, True, True]
model.backbone.bottom_up.stages.deform_modulated = True
model.roi_heads.box_pooler = mdpool
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
