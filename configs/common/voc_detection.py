"""PASCAL VOC 07+12 trainval -> VOC 2007 test detection training (configs/PascalVOC-Detection/*.yaml):
detectron2's COCO data piece with VOC's data sets, scales (shorter side 480-800, test 800) and
evaluator, 18k iterations at 16 images (LR steps at 12k and 16k, 100 warm-up iterations),
dcn_det's SGD. Models: set ``model.roi_heads.num_classes = 20``."""
from detectron2.config import LazyCall as L
from detectron2.evaluation import PascalVOCDetectionEvaluator
from detectron2.model_zoo import get_config
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from .optim import SGD as optimizer  # noqa: F401

dataloader = get_config("common/data/coco.py").dataloader
dataloader.train.dataset.names = ("voc_2007_trainval", "voc_2012_trainval")
dataloader.train.mapper.augmentations[0].short_edge_length = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
dataloader.train.mapper.use_instance_mask = False
dataloader.test.dataset.names = ("voc_2007_test",)
dataloader.evaluator = L(PascalVOCDetectionEvaluator)(dataset_name="voc_2007_test")

train = get_config("common/train.py").train
train.max_iter = 18000  # about 17 epochs of VOC 07+12 at 16 images per batch
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1, 0.01], milestones=[12000, 16000, 18000]),
    warmup_length=100 / 18000,
    warmup_method="linear",
    warmup_factor=0.001,
)
