"""COCO 2017 training for 1x (90k iterations at 16 images, LR steps at 60k and 80k): detectron2's
own data, schedule and train pieces with dcn_det's SGD (configs/common/optim.py)."""
from detectron2.model_zoo import get_config

from .optim import SGD as optimizer  # noqa: F401

dataloader = get_config("common/data/coco.py").dataloader
lr_multiplier = get_config("common/coco_schedule.py").lr_multiplier_1x
train = get_config("common/train.py").train
train.max_iter = 90000
# Box-only models (Faster R-CNN, R-FCN, RetinaNet: MODEL.MASK_ON False) load no masks; Mask R-CNN
# twins set this back to True.
dataloader.train.mapper.use_instance_mask = False
