# Twin of deeplab_v3_R_103_os16_mg124_poly_90k_bs16.yaml: DeepLabV3 R-103 on Cityscapes fine,
# 90k iterations at 16 crops of 512x1024 (detectron2's DeepLab project baseline).
from ..common.models.deeplab_v3 import model
from ..common.sem_seg import dataloader, lr_multiplier, optimizer, train

model.sem_seg_head.num_classes = 19
train.init_checkpoint = "detectron2://DeepLab/R-103.pkl"  # ImageNet R-101 with the DeepLab stem
