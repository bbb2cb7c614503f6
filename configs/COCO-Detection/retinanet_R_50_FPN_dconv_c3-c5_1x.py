# Twin of retinanet_R_50_FPN_dconv_c3-c5_1x.yaml: DCNv1, deformable convs in res3-res5.
from .retinanet_R_50_FPN_1x import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.deform_on_per_stage = [False, True, True, True]  # res3-res5
model.backbone.bottom_up.stages.deform_modulated = False
