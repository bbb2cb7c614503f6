# Twin of rfcn_dcn_coco.yaml: the authors' Deformable R-FCN R-101 (their rfcn_dcn_coco): deformable
# res5a-c with 4 deformable groups and their border rule, deformable PS-RoI pooling with
# per-class offsets.
from ..common.models.original_rfcn import model
from ..common.original_test import dataloader, train

model.backbone.stages.update(
    deform_on_per_stage=[False, False, False, True],  # res5a-c
    deform_num_groups=4,
    border="dcnv1",  # MODEL.DCN.BORDER
)
model.roi_heads.update(deformable=True, class_agnostic_offsets=False, trans_std=0.1)
