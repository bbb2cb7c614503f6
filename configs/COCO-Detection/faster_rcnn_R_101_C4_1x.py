# Twin of faster_rcnn_R_101_C4_1x.yaml: Faster R-CNN R-101-C4, the plain baseline.
from ..common.coco_1x import dataloader, lr_multiplier, optimizer, train
from ..common.models.faster_rcnn_c4 import model

model.backbone.stages.depth = 101
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-101.pkl"
