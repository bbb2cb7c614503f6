# Twin of rfcn_R_101.yaml: R-FCN R-101 on VOC 07+12.
from ..common.models.rfcn import model
from ..common.voc_detection import dataloader, lr_multiplier, optimizer, train

model.backbone.stages.depth = 101
model.roi_heads.num_classes = 20
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-101.pkl"
