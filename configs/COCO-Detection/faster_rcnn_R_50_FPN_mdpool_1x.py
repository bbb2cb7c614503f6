# Twin of faster_rcnn_R_50_FPN_mdpool_1x.yaml: modulated deformable RoI pooling (DCNv2) on the
# plain backbone.
from ..common.models.faster_rcnn_fpn import mdpool
from .faster_rcnn_R_50_FPN_1x import dataloader, lr_multiplier, model, optimizer, train

model.roi_heads.box_pooler = mdpool
