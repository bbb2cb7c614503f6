"""detectron2 components (importing this registers them)."""
from .backbone import (
    CeilModeStem,
    LastLevelP6FromC5,
    DeformBottleneck,
    build_dcn_resnet_backbone,
    build_dcn_resnet_deeplab_backbone,
    build_dcn_resnet_fpn_backbone,
    build_dcn_retinanet_resnet_fpn_backbone,
    make_dcn_resnet_stages,
    make_dcn_stage,
)
from .anchor_generator import RoundedAnchorGenerator
from .proposal_generator import OriginalRPN
from .soft_nms import SoftNMSOutputLayers, soft_nms
from .sem_seg_heads import DeepLabV3GlobalPoolHead, OriginalDeepLabHead, make_deeplab_v3_head
from .roi_heads import (
    ClipPlusOneOutputLayers,
    DeformCascadeROIHeads,
    DeformRes5ROIHeads,
    DeformROIPooler,
    DeformStandardROIHeads,
    PlusOneBoxPooler,
    RFCNROIHeads,
    box_reduce_conv,
)

__all__ = [
    "DeformBottleneck",
    "build_dcn_resnet_backbone",
    "build_dcn_resnet_fpn_backbone",
    "build_dcn_retinanet_resnet_fpn_backbone",
    "build_dcn_resnet_deeplab_backbone",
    "make_dcn_resnet_stages",
    "make_dcn_stage",
    "DeformROIPooler",
    "DeformStandardROIHeads",
    "DeformRes5ROIHeads",
    "DeformCascadeROIHeads",
    "RFCNROIHeads",
    "DeepLabV3GlobalPoolHead",
    "make_deeplab_v3_head",
    "OriginalDeepLabHead",
    "SoftNMSOutputLayers",
    "soft_nms",
    "RoundedAnchorGenerator",
    "OriginalRPN",
    "CeilModeStem",
    "LastLevelP6FromC5",
    "PlusOneBoxPooler",
    "ClipPlusOneOutputLayers",
    "box_reduce_conv",
]
