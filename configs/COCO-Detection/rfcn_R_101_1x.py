# Twin of rfcn_R_101_1x.yaml: R-FCN R-101, the plain baseline.
from ..common.coco_1x import dataloader, lr_multiplier, optimizer, train
from ..common.models.rfcn import model

model.backbone.stages.depth = 101
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-101.pkl"
