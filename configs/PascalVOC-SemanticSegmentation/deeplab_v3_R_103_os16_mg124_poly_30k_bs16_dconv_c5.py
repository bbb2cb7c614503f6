# Twin of deeplab_v3_R_103_os16_mg124_poly_30k_bs16_dconv_c5.yaml: deformable convs in res5 (DCNv1).
from .deeplab_v3_R_103_os16_mg124_poly_30k_bs16 import dataloader, lr_multiplier, model, optimizer, train

model.backbone.stages.deform_on_per_stage = [False, False, False, True]  # res5
model.backbone.stages.deform_modulated = False
