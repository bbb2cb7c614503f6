# Twin of rfcn_dcnv2.yaml: DCNv2 R-FCN, modulated deformable convs in res3-res5 and modulated
# deformable PS-RoI pooling.
from .rfcn_plain import dataloader, lr_multiplier, model, optimizer, train

model.backbone.stages.deform_on_per_stage = [False, True, True, True]  # res3-res5
model.backbone.stages.deform_modulated = True
model.roi_heads.deformable = True
model.roi_heads.modulated = True
train.output_dir = "output/demo/rfcn_dcnv2"
