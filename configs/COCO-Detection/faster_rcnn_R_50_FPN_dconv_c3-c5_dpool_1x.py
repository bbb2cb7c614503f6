# Twin of faster_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x.yaml: DCNv1, deformable convs in res3-res5 and
# deformable RoI pooling.
from ..common.models.faster_rcnn_fpn import dpool
from .faster_rcnn_R_50_FPN_1x import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.deform_on_per_stage = [False, True, True, True]  # res3-res5
model.roi_heads.box_pooler = dpool
