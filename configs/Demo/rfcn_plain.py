# Twin of rfcn_plain.yaml (Base-Demo-RFCN.yaml): R-FCN (res4 RPN, dilated res5, 7x7
# position-sensitive head) with the backbone widths of the Faster R-CNN demo (R-50 at 1/8 width),
# trained from scratch on the generated shapes (`tools/demo.py --models rfcn_plain rfcn_dcnv2`).
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from ..common.models.rfcn import model
from ..common.optim import SGD as optimizer
from ..common.shapes_demo import dataloader

model.backbone.stem.out_channels = 16
model.backbone.stem.norm = "BN"
model.backbone.stages.update(in_channels=16, res2_out_channels=32, width_per_group=8, stride_in_1x1=False, norm="BN")
model.backbone.freeze_at = 0
model.proposal_generator.head.update(in_channels=128, num_anchors=12)  # res4 of this width; 4 sizes x 3 ratios
model.proposal_generator.anchor_generator.sizes = [[16, 32, 64, 128]]
model.proposal_generator.batch_size_per_image = 128
model.proposal_generator.pre_nms_topk = (600, 300)
model.proposal_generator.post_nms_topk = (300, 100)
model.roi_heads.update(num_classes=7, in_channels=256, hidden_dim=128)
# From scratch with SGD the original head (std 0.01, average voting over 7x7 bins) barely learns
# in the demo's budget: He-initialised hidden conv, and for the head's three 1x1 convs 50x the
# learning rate with weight decay / 50 (the decay per step stays that of the base rate).
model.roi_heads.hidden_init = "msra"
optimizer.params.param_lr_factors = [[r"(^|\.)roi_heads\.(conv_new|rfcn_cls|rfcn_bbox)\.", 50.0, 0.02]]

for loader in (dataloader.test, dataloader.test_scaled):
    loader.mapper.augmentations[0].update(short_edge_length=192, max_size=256)
dataloader.train.mapper.augmentations[0].update(short_edge_length=(192,), max_size=256)
dataloader.train.total_batch_size = 4
dataloader.train.num_workers = 1

lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[1000], num_updates=1200),
    warmup_length=100 / 1200,
    warmup_method="linear",
    warmup_factor=0.001,
)
train = get_config("common/train.py").train
train.update(max_iter=1200, eval_period=0, output_dir="output/demo/rfcn_plain", init_checkpoint="")
train.checkpointer.period = 300
