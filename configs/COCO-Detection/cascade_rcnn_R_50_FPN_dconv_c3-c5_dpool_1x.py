# Twin of cascade_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x.yaml: DCNv1, deformable convs in res3-res5 and
# deformable RoI pooling in each stage's box head (one pooler per stage).
from detectron2.config import LazyCall as L
from torch import nn

from ..common.models.deform_poolers import dpool
from .cascade_rcnn_R_50_FPN_1x import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.deform_on_per_stage = [False, True, True, True]  # res3-res5
model.roi_heads.box_pooler = L(nn.ModuleList)(modules=[dpool, dpool, dpool])
