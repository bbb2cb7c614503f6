# Twin of mask_rcnn_R_50_FPN_1x.yaml: Mask R-CNN R-50-FPN, the plain baseline.
from ..common.coco_1x import dataloader, lr_multiplier, optimizer, train
from ..common.models.mask_rcnn_fpn import model

dataloader.train.mapper.use_instance_mask = True
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
