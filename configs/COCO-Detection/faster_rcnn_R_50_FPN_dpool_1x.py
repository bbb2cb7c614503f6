# Twin of faster_rcnn_R_50_FPN_dpool_1x.yaml: deformable RoI pooling (DCNv1) on the plain backbone.
from ..common.models.faster_rcnn_fpn import dpool
from .faster_rcnn_R_50_FPN_1x import dataloader, lr_multiplier, model, optimizer, train

model.roi_heads.box_pooler = dpool
