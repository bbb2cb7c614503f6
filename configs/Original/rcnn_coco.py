# Twin of rcnn_coco.yaml: the authors' Faster R-CNN R-101 (their rcnn_coco), max RoI pooling.
from ..common.models.original_rcnn import model
from ..common.original_test import dataloader, train

model.roi_heads.box_pooler.pooler.pooler_type = "ROIPool"
