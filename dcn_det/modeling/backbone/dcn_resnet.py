"""ResNet and ResNet-FPN backbones whose 3x3 convs are deformable (DCNv1) or modulated (DCNv2).

They are detectron2's ResNet with chosen blocks swapped for :class:`DeformBottleneck`, so
stage layout, strides, dilation and freezing are detectron2's, and the parameter names
are those of detectron2's ``DeformBottleneckBlock`` (conv1, conv2_offset, conv2, conv3,
shortcut): detectron2 dconv checkpoints and the ImageNet R-50/R-101 weights load, the
offset branches staying at their zero initialisation. Unlike detectron2's, these run on
the CPU.
"""
import copy
from typing import List, Optional, Sequence

import torch.nn.functional as F
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone import FPN
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from detectron2.modeling.backbone.resnet import BottleneckBlock, CNNBlockBase, ResNet, build_resnet_backbone
from fvcore.nn import weight_init
from torch import nn

from dcn_det.layers import DeformConv, ModulatedDeformConv


class DeformBottleneck(CNNBlockBase):
    """Bottleneck block with a deformable 3x3 conv (``conv2``) fed by ``conv2_offset``.

    Built from a detectron2 :class:`BottleneckBlock`, whose conv1, conv3, shortcut and
    conv2 weight/norm it takes over; ``conv2_offset`` (3x3, same stride/dilation) is
    zero-initialised, so the block computes what the plain block did. ``border`` is the
    deformable conv's sampling rule at the map's border ("dcnv2" or "dcnv1", MODEL.DCN.BORDER);
    ``offset_dilation`` the offset conv's dilation (0: conv2's, MODEL.DCN.OFFSET_CONV_DILATION).
    """

    def __init__(self, block: BottleneckBlock, modulated: bool = False, deformable_groups: int = 1,
                 border: str = "dcnv2", offset_dilation: int = 0):
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
        if offset_dilation < 0:
            raise ValueError(f"offset_dilation must be >= 0 (0: the deformable conv's), got {offset_dilation}")
        dilation, padding = plain.dilation, plain.padding
        if offset_dilation:
            # Same output size as conv2 for any stride: padding d * (k - 1) / 2.
            dilation = (offset_dilation, offset_dilation)
            padding = tuple(offset_dilation * (k - 1) // 2 for k in plain.kernel_size)
        self.conv2_offset = Conv2d(
            plain.in_channels,
            (3 if modulated else 2) * taps * deformable_groups,
            kernel_size=plain.kernel_size,
            stride=plain.stride,
            padding=padding,
            dilation=dilation,
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


def deformable_indices(num_blocks: int, last_blocks: int = -1, key: str = "deform_last_blocks") -> range:
    """Indices of a stage's deformable blocks: all (``last_blocks`` -1) or the last N >= 1
    (the DCNv1 paper's res5a-c ablation is 3 of res5's 3)."""
    if last_blocks == -1 or last_blocks >= num_blocks:
        return range(num_blocks)
    if last_blocks < 1:
        raise ValueError(f"{key} must be -1 (all blocks) or >= 1, got {last_blocks}")
    return range(num_blocks - last_blocks, num_blocks)


def swap_in_deformable(blocks, indices, modulated: bool = False, deformable_groups: int = 1, border: str = "dcnv2",
                       stage: str = "the stage", offset_dilation: int = 0):
    """Replace ``blocks[i]`` for i in ``indices`` (a list or nn.Sequential of detectron2
    BottleneckBlocks) in place by :class:`DeformBottleneck`; returns ``blocks``."""
    for i in indices:
        block = blocks[i]
        if not isinstance(block, BottleneckBlock):
            raise ValueError(
                f"deformable convs need bottleneck blocks (ResNet depth >= 50); {stage} has {type(block).__name__}"
            )
        blocks[i] = DeformBottleneck(block, modulated, deformable_groups, border, offset_dilation)
    return blocks


def deformable_blocks(cfg, stage_index: int, num_blocks: int) -> range:
    """Indices of the blocks of stage res{stage_index} (2..5) that are deformable."""
    if not cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE[stage_index - 2]:
        return range(0)
    return deformable_indices(
        num_blocks,
        cfg.MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE[stage_index - 2],
        f"MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE[{stage_index - 2}]",
    )


def make_stage_deformable(cfg, stage: nn.Sequential, stage_index: int) -> nn.Sequential:
    """Replace the configured blocks of ``stage`` (res{stage_index}) in place."""
    return swap_in_deformable(
        stage,
        deformable_blocks(cfg, stage_index, len(stage)),
        cfg.MODEL.RESNETS.DEFORM_MODULATED,
        cfg.MODEL.RESNETS.DEFORM_NUM_GROUPS,
        cfg.MODEL.DCN.BORDER,
        f"res{stage_index}",
        cfg.MODEL.DCN.OFFSET_CONV_DILATION,
    )


# ---- Plain-argument builders, for LazyConfig (configs/common/models/dcn_resnet.py) ----------

def make_dcn_stage(
    *,
    deformable: bool = False,
    deform_last_blocks: int = -1,
    deform_modulated: bool = False,
    deform_num_groups: int = 1,
    border: str = "dcnv2",
    offset_dilation: int = 0,
    block_class=BottleneckBlock,
    **stage_kwargs,
) -> List[CNNBlockBase]:
    """detectron2's ``ResNet.make_stage(block_class, **stage_kwargs)`` (num_blocks,
    stride_per_block, in/out/bottleneck channels, norm, stride_in_1x1, dilation, ...) with its
    last ``deform_last_blocks`` blocks (-1: all) deformable when ``deformable``: what the
    YAML keys MODEL.RESNETS.DEFORM_* / MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE / BORDER / OFFSET_CONV_DILATION
    say for one stage. The C4 box head's res5 is one such stage."""
    blocks = ResNet.make_stage(block_class=block_class, **stage_kwargs)
    if not deformable:
        return blocks
    indices = deformable_indices(len(blocks), deform_last_blocks)
    return swap_in_deformable(blocks, indices, deform_modulated, deform_num_groups, border, offset_dilation=offset_dilation)


def make_dcn_resnet_stages(
    depth: int = 50,
    *,
    in_channels: int = 64,
    res2_out_channels: int = 256,
    num_groups: int = 1,
    width_per_group: int = 64,
    stride_in_1x1: bool = True,
    norm: str = "FrozenBN",
    res4_dilation: int = 1,
    res5_dilation: int = 1,
    res5_multi_grid: Optional[Sequence[int]] = None,
    deform_on_per_stage: Sequence[bool] = (False, False, False, False),
    deform_last_blocks_per_stage: Sequence[int] = (-1, -1, -1, -1),
    deform_modulated: bool = False,
    deform_num_groups: int = 1,
    border: str = "dcnv2",
    offset_dilation: int = 0,
) -> List[List[CNNBlockBase]]:
    """The four bottleneck stages res2-res5 that ``build_dcn_resnet_backbone`` builds from
    MODEL.RESNETS.* (``in_channels`` = STEM_OUT_CHANNELS, RES5_DILATION 1 or 2 as in
    R-FCN) and the deformable keys, for ``ResNet(stem, stages, out_features, freeze_at)``.
    ``res4_dilation`` / ``res5_dilation`` (4 needs res4 dilated) and ``res5_multi_grid`` (each res5
    block's dilation is res5_dilation times its entry, e.g. [1, 2, 4]) are the DeepLab project's
    MODEL.RESNETS.RES4_DILATION / RES5_DILATION / RES5_MULTI_GRID."""
    blocks_per_stage = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}
    if depth not in blocks_per_stage:
        raise ValueError(f"depth must be 50, 101 or 152 (bottleneck ResNets), got {depth}")
    if res4_dilation not in (1, 2):
        raise ValueError(f"res4_dilation must be 1 or 2, got {res4_dilation}")
    if res5_dilation not in ((4,) if res4_dilation == 2 else (1, 2, 4)):
        raise ValueError(f"res5_dilation must be 1, 2 or 4 (4 when res4_dilation is 2), got {res5_dilation}")
    if res5_multi_grid is not None and len(res5_multi_grid) != blocks_per_stage[depth][3]:
        raise ValueError(f"res5_multi_grid needs one entry per res5 block ({blocks_per_stage[depth][3]}), got {list(res5_multi_grid)}")
    out_channels, bottleneck = res2_out_channels, num_groups * width_per_group
    stages = []
    for i, num_blocks in enumerate(blocks_per_stage[depth]):
        dilation = (1, 1, res4_dilation, res5_dilation)[i]
        first_stride = 1 if i == 0 or dilation > 1 else 2
        if i == 3 and res5_multi_grid is not None:
            dilations = {"dilation_per_block": [dilation * int(g) for g in res5_multi_grid]}
        else:
            dilations = {"dilation": dilation}
        stages.append(
            make_dcn_stage(
                deformable=bool(deform_on_per_stage[i]),
                deform_last_blocks=deform_last_blocks_per_stage[i],
                deform_modulated=deform_modulated,
                deform_num_groups=deform_num_groups,
                border=border,
                offset_dilation=offset_dilation,
                num_blocks=num_blocks,
                stride_per_block=[first_stride] + [1] * (num_blocks - 1),
                in_channels=in_channels,
                out_channels=out_channels,
                bottleneck_channels=bottleneck,
                num_groups=num_groups,
                norm=norm,
                stride_in_1x1=stride_in_1x1,
                **dilations,
            )
        )
        in_channels, out_channels, bottleneck = out_channels, out_channels * 2, bottleneck * 2
    return stages


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


class LastLevelP6FromC5(nn.Module):
    """The FPN's P6 as the authors' Deformable FPN computes it: a 3x3 stride-2 conv (padding 1,
    no activation) on res5 (MODEL.FPN.TOP_BLOCK "p6_conv_c5"), instead of detectron2's
    max-pool of P5. An FPN ``top_block``: reads ``in_feature``, adds one level."""

    def __init__(self, in_channels: int, out_channels: int, in_feature: str = "res5"):
        super().__init__()
        self.num_levels = 1
        self.in_feature = in_feature
        self.p6 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)
        weight_init.c2_xavier_fill(self.p6)

    def forward(self, c5):
        return [self.p6(c5)]


@BACKBONE_REGISTRY.register()
def build_dcn_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """FPN (MODEL.FPN.*) on :func:`build_dcn_resnet_backbone`, as detectron2's
    ``build_resnet_fpn_backbone``; MODEL.FPN.TOP_BLOCK picks P6 (max-pool of P5, or a conv on
    res5)."""
    bottom_up = build_dcn_resnet_backbone(cfg, input_shape)
    out_channels = cfg.MODEL.FPN.OUT_CHANNELS
    kind = cfg.MODEL.FPN.get("TOP_BLOCK", "maxpool")
    top_blocks = {  # the names are dcn_det.config.FPN_TOP_BLOCKS
        "maxpool": LastLevelMaxPool,
        "p6_conv_c5": lambda: LastLevelP6FromC5(bottom_up.output_shape()["res5"].channels, out_channels),
    }
    if kind not in top_blocks:
        raise ValueError(f"MODEL.FPN.TOP_BLOCK must be one of {list(top_blocks)}, got {kind!r}")
    top_block = top_blocks[kind]()
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=out_channels,
        norm=cfg.MODEL.FPN.NORM,
        top_block=top_block,
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
