# Twin of retinanet_R_50_FPN_1x.yaml: RetinaNet R-50-FPN, the plain baseline.
from ..common.coco_1x import dataloader, lr_multiplier, optimizer, train
from ..common.models.retinanet import model

optimizer.lr = 0.01  # RetinaNet's, as detectron2's
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
