# Twin of deeplab_v3_R_103_os16_mg124_poly_30k_bs16.yaml: DeepLabV3 R-103 on VOC 2012 (train_aug
# with SBD's labels, see docs/model_zoo.md), 30k iterations at 16 crops of 512x512; global
# image pooling in ASPP, as VOC test images vary in size.
from ..common.models.deeplab_v3 import model
from ..common.sem_seg import dataloader, lr_multiplier, optimizer, train

model.sem_seg_head.update(num_classes=21, train_crop_size=[512, 512], global_pool=True)
dataloader.train.dataset.names = "voc_2012_sem_seg_train"
dataloader.train.mapper.augmentations[0].update(short_edge_length=(512, 640, 768, 896, 1024), max_size=2048)
dataloader.train.mapper.augmentations[1].crop_size = (512, 512)
dataloader.test.dataset.names = "voc_2012_sem_seg_val"
dataloader.test.mapper.augmentations[0].update(short_edge_length=512, max_size=1024)
train.max_iter = 30000
train.init_checkpoint = "detectron2://DeepLab/R-103.pkl"  # ImageNet R-101 with the DeepLab stem
