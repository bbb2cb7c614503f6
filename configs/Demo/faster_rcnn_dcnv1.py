# Twin of faster_rcnn_dcnv1.yaml: DCNv1 (deformable convs in res3-res5, deformable RoI pooling).
from ..common.models.deform_poolers import dpool
from .faster_rcnn_plain import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.deform_on_per_stage = [False, True, True, True]  # res3-res5
# The demo's pooler: 64 channels, one 256-d offset fc, 2x2 samples per bin (no AP lost against
# 4x4 here, a much cheaper backward: docs/demo.md).
dpool.update(in_channels=64, offset_fc_dims=[256], sample_per_part=2)
model.roi_heads.box_pooler = dpool
train.output_dir = "output/demo/dcnv1"
