"""A DeepLabV3 head for test images of any size (PASCAL VOC), registered as
``DeepLabV3GlobalPoolHead``.

detectron2's DeepLab project sizes the ASPP image-pooling branch from INPUT.CROP.SIZE when
training crops are on (an average pool of the crop's feature size), which then rejects test
images whose feature map is not a multiple of it (VOC images vary in size). This head is
the project's ``DeepLabV3Head`` with global average pooling in that branch, at training and
test time alike (the image-level feature of the DeepLabv3 paper). The pooling has no
parameters, so checkpoints of either head load into the other.

``make_deeplab_v3_head`` builds either head from plain arguments (LazyConfig).
"""
from typing import Dict, Optional, Sequence

from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from detectron2.projects.deeplab import DeepLabV3Head


@SEM_SEG_HEADS_REGISTRY.register()
class DeepLabV3GlobalPoolHead(DeepLabV3Head):
    def __init__(self, cfg, input_shape):
        cfg = cfg.clone()
        cfg.defrost()
        cfg.INPUT.CROP.ENABLED = False  # read only to size the ASPP pooling
        super().__init__(cfg, input_shape)


def make_deeplab_v3_head(
    input_shape: Dict[str, ShapeSpec],
    *,
    num_classes: int,
    in_features: Sequence[str] = ("res5",),
    aspp_channels: int = 256,
    aspp_dilations: Sequence[int] = (6, 12, 18),
    aspp_dropout: float = 0.1,
    convs_dim: int = 256,
    common_stride: int = 16,
    norm: str = "SyncBN",
    loss_type: str = "hard_pixel_mining",
    loss_weight: float = 1.0,
    ignore_value: int = 255,
    train_crop_size: Optional[Sequence[int]] = None,
    global_pool: bool = False,
    use_depthwise_separable_conv: bool = False,
) -> DeepLabV3Head:
    """The DeepLab project's ``DeepLabV3Head`` (``global_pool``: :class:`DeepLabV3GlobalPoolHead`)
    from plain arguments, for LazyConfig: that head is built from a config only, so this fills
    the MODEL.SEM_SEG_HEAD.* keys it reads (the arguments, lower case) and INPUT.CROP
    (``train_crop_size``: the absolute training crop that sizes the ASPP image pooling; None: no
    crop, global pooling)."""
    cfg = CfgNode()
    cfg.MODEL = CfgNode()
    cfg.MODEL.SEM_SEG_HEAD = CfgNode(dict(
        IN_FEATURES=list(in_features), ASPP_CHANNELS=aspp_channels, ASPP_DILATIONS=list(aspp_dilations),
        ASPP_DROPOUT=aspp_dropout, CONVS_DIM=convs_dim, COMMON_STRIDE=common_stride, NORM=norm,
        LOSS_TYPE=loss_type, LOSS_WEIGHT=loss_weight, IGNORE_VALUE=ignore_value, NUM_CLASSES=num_classes,
        USE_DEPTHWISE_SEPARABLE_CONV=use_depthwise_separable_conv,
    ))
    cfg.INPUT = CfgNode()
    crop = train_crop_size is not None
    cfg.INPUT.CROP = CfgNode(dict(ENABLED=crop, TYPE="absolute", SIZE=list(train_crop_size) if crop else []))
    head_class = DeepLabV3GlobalPoolHead if global_pool else DeepLabV3Head
    return head_class(cfg, dict(input_shape))
