# Twin of cascade_rcnn_R_50_FPN_1x.yaml: Cascade R-CNN R-50-FPN, the plain baseline.
from ..common.coco_1x import dataloader, lr_multiplier, optimizer, train
from ..common.models.cascade_rcnn_fpn import model

train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
