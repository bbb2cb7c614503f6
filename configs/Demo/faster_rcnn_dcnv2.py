# Twin of faster_rcnn_dcnv2.yaml: DCNv2 (modulated deformable convs in res3-res5, modulated RoI
# pooling).
from ..common.models.deform_poolers import mdpool
from .faster_rcnn_plain import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.deform_on_per_stage = [False, True, True, True]  # res3-res5
model.backbone.bottom_up.stages.deform_modulated = True
# The demo's pooler, as faster_rcnn_dcnv1.py's.
mdpool.update(in_channels=64, offset_fc_dims=[256], sample_per_part=2)
model.roi_heads.box_pooler = mdpool
train.output_dir = "output/demo/dcnv2"
