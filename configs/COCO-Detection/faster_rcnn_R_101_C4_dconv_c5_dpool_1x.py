# Twin of faster_rcnn_R_101_C4_dconv_c5_dpool_1x.yaml: the DCNv1 paper's Faster R-CNN, deformable
# convs in res5 (the box head) and deformable RoI pooling.
from ..common.models.faster_rcnn_c4 import dpool
from .faster_rcnn_R_101_C4_1x import dataloader, lr_multiplier, model, optimizer, train

model.roi_heads.res5.deformable = True  # res5 lives in the ROI heads: DEFORM_ON_PER_STAGE[3]
model.roi_heads.pooler = dpool
