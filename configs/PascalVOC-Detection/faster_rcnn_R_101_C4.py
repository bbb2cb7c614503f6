# Twin of faster_rcnn_R_101_C4.yaml: Faster R-CNN R-101-C4 on VOC 07+12.
from ..common.models.faster_rcnn_c4 import model
from ..common.voc_detection import dataloader, lr_multiplier, optimizer, train

model.backbone.stages.depth = 101
model.roi_heads.num_classes = 20
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-101.pkl"
