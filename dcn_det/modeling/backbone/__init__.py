from .dcn_resnet import (
    CeilModeStem,
    LastLevelP6FromC5,
    DeformBottleneck,
    build_dcn_resnet_backbone,
    build_dcn_resnet_fpn_backbone,
    build_dcn_retinanet_resnet_fpn_backbone,
    make_dcn_resnet_stages,
    make_dcn_stage,
)
from .dcn_resnet_deeplab import build_dcn_resnet_deeplab_backbone

__all__ = [
    "CeilModeStem",
    "LastLevelP6FromC5",
    "DeformBottleneck",
    "build_dcn_resnet_backbone",
    "build_dcn_resnet_fpn_backbone",
    "build_dcn_retinanet_resnet_fpn_backbone",
    "build_dcn_resnet_deeplab_backbone",
    "make_dcn_resnet_stages",
    "make_dcn_stage",
]
