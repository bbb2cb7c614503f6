"""DeepLabV3 R-103 (output stride 16, res5 multi-grid 1-2-4, ASPP) as
configs/Base-DCN-DeepLabV3.yaml builds it: detectron2's SemanticSegmentor on the DeepLab
project's ResNet (DeepLab stem of three 3x3 convs, SyncBN, nothing frozen) from dcn_det's stages
(deformable where ``model.backbone.stages.deform_on_per_stage`` says: the DCNv1 paper's
DeepLab deforms res5) and the project's DeepLabV3 head (``make_deeplab_v3_head``: that head is
built from a config only). Set ``model.sem_seg_head.num_classes`` and ``train_crop_size``."""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling import SemanticSegmentor
from detectron2.modeling.backbone import ResNet
from detectron2.projects.deeplab.resnet import DeepLabStem

from dcn_det.modeling import make_deeplab_v3_head

from .dcn_resnet import stages

model = L(SemanticSegmentor)(
    backbone=L(ResNet)(
        stem=L(DeepLabStem)(in_channels=3, out_channels=128, norm="SyncBN"),
        stages=stages,
        out_features=["res5"],
        freeze_at=0,
    ),
    sem_seg_head=L(make_deeplab_v3_head)(
        input_shape={"res5": ShapeSpec(channels=2048, stride=16)},
        num_classes=19,
        in_features=["res5"],
        aspp_channels=256,
        aspp_dilations=[6, 12, 18],
        aspp_dropout=0.1,
        convs_dim=256,
        common_stride=16,
        norm="SyncBN",
        loss_type="hard_pixel_mining",
        ignore_value=255,
        train_crop_size=[512, 1024],  # sizes the ASPP image pooling (INPUT.CROP.SIZE)
        global_pool=False,  # True: DeepLabV3GlobalPoolHead, for test images of any size
    ),
    pixel_mean=[123.675, 116.280, 103.530],  # RGB
    pixel_std=[58.395, 57.120, 57.375],
)
model.backbone.stages.update(
    depth=101, in_channels=128, stride_in_1x1=False, norm="SyncBN", res5_dilation=2, res5_multi_grid=[1, 2, 4]
)
