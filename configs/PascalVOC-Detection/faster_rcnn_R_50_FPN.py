# Twin of faster_rcnn_R_50_FPN.yaml: Faster R-CNN R-50-FPN on VOC 07+12.
from ..common.models.faster_rcnn_fpn import model
from ..common.voc_detection import dataloader, lr_multiplier, optimizer, train

model.roi_heads.num_classes = 20
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
