# Twin of rfcn_R_101_mdconv_c3-c5_mdpsroi_1x.yaml: DCNv2's R-FCN, modulated deformable convs in
# res3-res5 and modulated deformable position-sensitive RoI pooling.
from .rfcn_R_101_1x import dataloader, lr_multiplier, model, optimizer, train

model.backbone.stages.deform_on_per_stage = [False, True, True, True]  # res3-res5
model.backbone.stages.deform_modulated = True
model.roi_heads.deformable = True
model.roi_heads.modulated = True
