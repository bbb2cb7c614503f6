# Twin of rfcn_R_101_dconv_c5_dpsroi_1x.yaml: the DCNv1 paper's R-FCN, deformable convs in res5 and
# deformable position-sensitive RoI pooling.
from .rfcn_R_101_1x import dataloader, lr_multiplier, model, optimizer, train

model.backbone.stages.deform_on_per_stage = [False, False, False, True]  # res5
model.roi_heads.deformable = True
