"""Semantic-segmentation training as the DeepLab project trains (configs/Base-DCN-DeepLabV3.yaml,
dcn_det.sem_seg_training): resize, a random crop keeping any one category under the whole crop
(``single_category_max_area``), flip, RGB; the poly schedule (``WarmupPolyParamScheduler``,
SOLVER.LR_SCHEDULER_NAME "WarmupPolyLR"); SGD at 0.01 over 16 images; mIoU. Set in the twin: the
data sets, sizes and crop, ``train.max_iter`` and ``lr_multiplier.max_iter``."""
import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import DatasetMapper, build_detection_test_loader, build_detection_train_loader, get_detection_dataset_dicts
from detectron2.model_zoo import get_config
from omegaconf import OmegaConf

from dcn_det.sem_seg_training import SemSegDatasetMapper, build_sem_seg_evaluator
from dcn_det.solver import WarmupPolyParamScheduler

from .optim import SGD as optimizer

optimizer.lr = 0.01

dataloader = OmegaConf.create()
dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="cityscapes_fine_sem_seg_train"),
    mapper=L(SemSegDatasetMapper)(
        augmentations=[
            L(T.ResizeShortestEdge)(
                short_edge_length=(512, 768, 1024, 1280, 1536, 1792, 2048), max_size=4096, sample_style="choice"
            ),
            L(T.RandomCrop_CategoryAreaConstraint)(
                crop_type="absolute", crop_size=(512, 1024), single_category_max_area=1.0, ignored_category=255
            ),
            L(T.RandomFlip)(horizontal=True, vertical=False),
        ],
        image_format="RGB",
    ),
    total_batch_size=16,
    num_workers=4,
)
dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="cityscapes_fine_sem_seg_val", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=1024, max_size=2048)],
        image_format="RGB",
    ),
    num_workers=4,
)
dataloader.evaluator = L(build_sem_seg_evaluator)(dataset_name="${..test.dataset.names}", output_folder=None)

train = get_config("common/train.py").train
train.max_iter = 90000
lr_multiplier = L(WarmupPolyParamScheduler)(
    max_iter="${..train.max_iter}", warmup_iters=1000, warmup_factor=0.001, power=0.9, constant_ending=0.0
)
