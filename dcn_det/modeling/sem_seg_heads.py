"""A DeepLabV3 head for test images of any size (PASCAL VOC), registered as
``DeepLabV3GlobalPoolHead``.

detectron2's DeepLab project sizes the ASPP image-pooling branch from INPUT.CROP.SIZE when
training crops are on (an average pool of the crop's feature size), which then rejects test
images whose feature map is not a multiple of it (VOC images vary in size). This head is
the project's ``DeepLabV3Head`` with global average pooling in that branch, at training and
test time alike (the image-level feature of the DeepLabv3 paper). The pooling has no
parameters, so checkpoints of either head load into the other.

``make_deeplab_v3_head`` builds either head from plain arguments (LazyConfig).

``OriginalDeepLabHead`` is the authors' Deformable DeepLab head (fc6, score, a fixed bilinear
deconvolution), registered under that name.
"""
import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode, configurable
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from detectron2.projects.deeplab import DeepLabV3Head
from torch import nn


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


def bilinear_upsampling_kernel(kernel_size: int) -> torch.Tensor:
    """The fixed kernel of an FCN / MXNet "bilinear" deconvolution: with stride s and kernel 2s
    it interpolates bilinearly (half-pixel centres) once cropped by s / 2."""
    f = math.ceil(kernel_size / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    r = 1 - (torch.arange(kernel_size, dtype=torch.float64) / f - c).abs()
    return (r[:, None] * r[None, :]).float()


@SEM_SEG_HEADS_REGISTRY.register()
class OriginalDeepLabHead(nn.Module):
    """The authors' Deformable DeepLab head (their deeplab symbols): ``fc6`` a 1x1 conv to
    ``hidden_dim`` + ReLU, ``score`` a 1x1 conv to the classes, and a fixed (not learned)
    bilinear deconvolution, kernel 2 x ``common_stride``, stride ``common_stride``, one group per
    class, cropped by common_stride / 2. Inside the map this is bilinear interpolation with
    half-pixel centres; in the outer common_stride / 2 pixels it differs (the deconvolution's
    taps fall off the map). MODEL.SEM_SEG_HEAD.NAME "OriginalDeepLabHead" reads IN_FEATURES (one),
    NUM_CLASSES, CONVS_DIM (hidden_dim: 1024 in the original), COMMON_STRIDE, IGNORE_VALUE,
    LOSS_WEIGHT. Loss: softmax cross-entropy over the pixels not ``ignore_value``."""

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes: int, in_feature: str = "res5",
                 hidden_dim: int = 1024, common_stride: int = 16, ignore_value: int = 255, loss_weight: float = 1.0):
        super().__init__()
        if in_feature not in input_shape:
            raise ValueError(f"OriginalDeepLabHead: in_feature {in_feature!r} is not a backbone output ({sorted(input_shape)})")
        if common_stride < 2 or common_stride % 2:
            raise ValueError(f"OriginalDeepLabHead: common_stride must be even and >= 2, got {common_stride}")
        self.in_feature = in_feature
        self.common_stride = common_stride
        self.ignore_value = ignore_value
        self.loss_weight = loss_weight
        self.fc6 = Conv2d(input_shape[in_feature].channels, hidden_dim, kernel_size=1, activation=F.relu)
        self.score = Conv2d(hidden_dim, num_classes, kernel_size=1)
        for conv in (self.fc6, self.score):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        kernel = bilinear_upsampling_kernel(2 * common_stride)
        # Fixed, so not a parameter; not saved either: it follows from common_stride.
        self.register_buffer("upsampling_kernel", kernel.expand(num_classes, 1, *kernel.shape).clone(), persistent=False)

    @classmethod
    def from_config(cls, cfg, input_shape):
        head = cfg.MODEL.SEM_SEG_HEAD
        if len(head.IN_FEATURES) != 1:
            raise ValueError(f"OriginalDeepLabHead reads one feature map; MODEL.SEM_SEG_HEAD.IN_FEATURES is {head.IN_FEATURES}")
        return dict(input_shape=input_shape, num_classes=head.NUM_CLASSES, in_feature=head.IN_FEATURES[0],
                    hidden_dim=head.CONVS_DIM, common_stride=head.COMMON_STRIDE, ignore_value=head.IGNORE_VALUE,
                    loss_weight=head.LOSS_WEIGHT)

    def layers(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Class scores at the input's resolution (common_stride x the feature map, top-left
        aligned; SemanticSegmentor crops them to each image)."""
        scores = self.score(self.fc6(features[self.in_feature]))
        s = self.common_stride
        up = F.conv_transpose2d(scores, self.upsampling_kernel.to(scores.dtype), stride=s, groups=scores.shape[1])
        h, w = scores.shape[-2:]
        return up[..., s // 2 : s // 2 + h * s, s // 2 : s // 2 + w * s]

    def forward(self, features, targets=None):
        scores = self.layers(features)
        if not self.training:
            return scores, {}
        height, width = targets.shape[-2:]
        loss = F.cross_entropy(scores[..., :height, :width], targets, reduction="mean", ignore_index=self.ignore_value)
        return None, {"loss_sem_seg": loss * self.loss_weight}
