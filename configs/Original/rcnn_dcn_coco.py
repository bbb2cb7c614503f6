# Twin of rcnn_dcn_coco.yaml: the authors' Deformable Faster R-CNN R-101 (their rcnn_dcn_coco):
# deformable res5a-c with 4 deformable groups and their border rule, deformable RoI pooling.
from ..common.models.original_rcnn import dpool, model
from ..common.original_test import dataloader, train

model.backbone.stages.update(
    deform_on_per_stage=[False, False, False, True],  # res5a-c
    deform_num_groups=4,
    border="dcnv1",  # MODEL.DCN.BORDER
)
model.roi_heads.box_pooler.pooler = dpool
