# Twin of faster_rcnn_plain.yaml (Base-Demo-FPN.yaml): Faster R-CNN R-50-FPN at 1/8 width, trained
# from scratch on the generated shapes (`make demo`); the recipe (GN in the FPN, AdamW, 16 images
# per batch, 32 RoIs per image) is measured in docs/demo.md.
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.model_zoo import get_config
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from ..common.models.faster_rcnn_fpn import model
from ..common.optim import AdamW as optimizer
from ..common.shapes_demo import dataloader

model.backbone.bottom_up.stem.out_channels = 16
model.backbone.bottom_up.stem.norm = "BN"
model.backbone.bottom_up.stages.update(
    in_channels=16, res2_out_channels=32, width_per_group=8, stride_in_1x1=False, norm="BN"
)
model.backbone.bottom_up.freeze_at = 0
model.backbone.out_channels = 64
model.backbone.norm = "GN"  # from scratch at this batch size the un-normalised FPN learns slowly
model.proposal_generator.head.in_channels = 64
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.proposal_generator.batch_size_per_image = 128
model.proposal_generator.pre_nms_topk = (600, 300)
model.proposal_generator.post_nms_topk = (150, 100)
model.roi_heads.num_classes = 7
model.roi_heads.batch_size_per_image = 32  # 1-3 objects per image; also the RoIs deformable pooling pays for
model.roi_heads.box_head.input_shape = ShapeSpec(channels=64, height=7, width=7)
model.roi_heads.box_head.fc_dims = [256, 256]
model.roi_heads.box_predictor.input_shape = ShapeSpec(channels=256)

optimizer.lr = 0.002
optimizer.weight_decay = 0.05
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[800], num_updates=1000),
    warmup_length=100 / 1000,
    warmup_method="linear",
    warmup_factor=0.001,
)
train = get_config("common/train.py").train
train.update(max_iter=1000, eval_period=0, output_dir="output/demo/plain", init_checkpoint="")
train.checkpointer.period = 250
