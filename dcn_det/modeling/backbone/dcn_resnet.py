"""ResNet and ResNet-FPN backbones whose 3x3 convs are deformable (DCNv1) or modulated (DCNv2).

They are detectron2's ResNet with chosen blocks swapped for :class:`DeformBottleneck`, so
stage layout, strides, dilation and freezing are detectron2's, and the parameter names
are those of detectron2's ``DeformBottleneckBlock`` (conv1, conv2_offset, conv2, conv3,
shortcut): detectron2 dconv checkpoints and the ImageNet R-50/R-101 weights load, the
offset branches staying at their zero initialisation. Unlike detectron2's, these run on
the CPU.
"""
import copy

import torch.nn.functional as F
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone import FPN
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from detectron2.modeling.backbone.resnet import BottleneckBlock, CNNBlockBase, ResNet, build_resnet_backbone
from torch import nn

from dcn_det.layers import DeformConv, ModulatedDeformConv


class DeformBottleneck(CNNBlockBase):
    """Bottleneck block with a deformable 3x3 conv (``conv2``) fed by ``conv2_offset``.

    Built from a detectron2 :class:`BottleneckBlock`, whose conv1, conv3, shortcut and
    conv2 weight/norm it takes over; ``conv2_offset`` (3x3, same stride/dilation) is
    zero-initialised, so the block computes what the plain block did. ``border`` is the
    deformable conv's sampling rule at the map's border ("dcnv2" or "dcnv1", MODEL.DCN.BORDER).
    """

    def __init__(self, block: BottleneckBlock, modulated: bool = False, deformable_groups: int = 1,
                 border: str = "dcnv2"):
        super().__init__(block.in_channels, block.out_channels, block.stride)
        self.deform_modulated = modulated
        self.shortcut = block.shortcut
        self.conv1 = block.conv1
        self.conv3 = block.conv3
        plain = block.conv2
        conv_cls = ModulatedDeformConv if modulated else DeformConv
        self.conv2 = conv_cls(
            plain.in_channels,
            plain.out_channels,
            kernel_size=plain.kernel_size,
            stride=plain.stride,
            padding=plain.padding,
            dilation=plain.dilation,
            groups=plain.groups,
            deformable_groups=deformable_groups,
            bias=False,
            norm=plain.norm,
            border=border,
        )
        self.conv2.weight = plain.weight
        taps = plain.kernel_size[0] * plain.kernel_size[1]
        self.conv2_offset = Conv2d(
            plain.in_channels,
            (3 if modulated else 2) * taps * deformable_groups,
            kernel_size=plain.kernel_size,
            stride=plain.stride,
            padding=plain.padding,
            dilation=plain.dilation,
        )
        nn.init.zeros_(self.conv2_offset.weight)
        nn.init.zeros_(self.conv2_offset.bias)

    def forward(self, x):
        out = F.relu_(self.conv1(x))
        offset = self.conv2_offset(out)
        if self.deform_modulated:
            n = offset.shape[1] // 3
            out = self.conv2(out, offset[:, : 2 * n], offset[:, 2 * n :].sigmoid())
        else:
            out = self.conv2(out, offset)
        out = F.relu_(out)
        out = self.conv3(out)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out + shortcut)


class CeilModeStem(CNNBlockBase):
    """detectron2's stem (conv1 7x7/2, ReLU, 3x3/2 max-pool) with the max-pool of the
    original MXNet / Caffe ResNets: padding 0, ceil mode (MODEL.RESNETS.STEM_POOL_CEIL_MODE).
    A 387-pixel map pools to 193 instead of detectron2's 194. Takes over the stem's conv1,
    so parameter names and checkpoints are unchanged."""

    def __init__(self, stem: CNNBlockBase):
        super().__init__(stem.in_channels, stem.out_channels, stem.stride)
        self.conv1 = stem.conv1

    def forward(self, x):
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=0, ceil_mode=True)


def deformable_blocks(cfg, stage_index: int, num_blocks: int) -> range:
    """Indices of the blocks of stage res{stage_index} (2..5) that are deformable."""
    if not cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE[stage_index - 2]:
        return range(0)
    last = cfg.MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE[stage_index - 2]
    if last == -1 or last >= num_blocks:
        return range(num_blocks)
    if last < 1:
        raise ValueError(
            f"MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE[{stage_index - 2}] must be -1 (all blocks) or >= 1, got {last}"
        )
    return range(num_blocks - last, num_blocks)


def make_stage_deformable(cfg, stage: nn.Sequential, stage_index: int) -> nn.Sequential:
    """Replace the configured blocks of ``stage`` (res{stage_index}) in place."""
    for i in deformable_blocks(cfg, stage_index, len(stage)):
        block = stage[i]
        if not isinstance(block, BottleneckBlock):
            raise ValueError(
                f"deformable convs need bottleneck blocks (MODEL.RESNETS.DEPTH >= 50); res{stage_index} "
                f"has {type(block).__name__}"
            )
        stage[i] = DeformBottleneck(
            block, cfg.MODEL.RESNETS.DEFORM_MODULATED, cfg.MODEL.RESNETS.DEFORM_NUM_GROUPS, cfg.MODEL.DCN.BORDER
        )
    return stage


def without_deform(cfg):
    """A copy of cfg asking detectron2 for plain blocks everywhere."""
    plain = copy.deepcopy(cfg)
    plain.defrost()
    plain.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False] * 4
    return plain


@BACKBONE_REGISTRY.register()
def build_dcn_resnet_backbone(cfg, input_shape: ShapeSpec) -> ResNet:
    """detectron2's ResNet (MODEL.RESNETS.*) with dcn_det deformable blocks where
    MODEL.RESNETS.DEFORM_ON_PER_STAGE and MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE say."""
    resnet = build_resnet_backbone(without_deform(cfg), input_shape)
    if cfg.MODEL.RESNETS.STEM_POOL_CEIL_MODE:
        resnet.stem = CeilModeStem(resnet.stem)
    for name, stage in zip(resnet.stage_names, resnet.stages):
        make_stage_deformable(cfg, stage, int(name[len("res"):]))
    # Re-apply freezing so that swapped-in blocks of frozen stages are frozen too.
    return resnet.freeze(cfg.MODEL.BACKBONE.FREEZE_AT)


@BACKBONE_REGISTRY.register()
def build_dcn_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """FPN (MODEL.FPN.*) on :func:`build_dcn_resnet_backbone`, as detectron2's
    ``build_resnet_fpn_backbone``."""
    return FPN(
        bottom_up=build_dcn_resnet_backbone(cfg, input_shape),
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


@BACKBONE_REGISTRY.register()
def build_dcn_retinanet_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """RetinaNet's FPN (P3-P7, P6 from res5, as detectron2's
    ``build_retinanet_resnet_fpn_backbone``) on :func:`build_dcn_resnet_backbone`."""
    bottom_up = build_dcn_resnet_backbone(cfg, input_shape)
    out_channels = cfg.MODEL.FPN.OUT_CHANNELS
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=out_channels,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelP6P7(bottom_up.output_shape()["res5"].channels, out_channels),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
