# Twin of rfcn_R_101_dconv_c5_dpsroi.yaml: deformable convs in res5 and deformable PS-RoI pooling
# on VOC 07+12.
from .rfcn_R_101 import dataloader, lr_multiplier, model, optimizer, train

model.backbone.stages.deform_on_per_stage = [False, False, False, True]  # res5
model.roi_heads.deformable = True
