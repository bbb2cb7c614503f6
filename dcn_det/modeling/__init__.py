"""detectron2 components (importing this registers them)."""
from .backbone import DeformBottleneck, build_dcn_resnet_backbone, build_dcn_resnet_fpn_backbone
from .roi_heads import DeformRes5ROIHeads, DeformROIPooler, DeformStandardROIHeads, RFCNROIHeads

__all__ = [
    "DeformBottleneck",
    "build_dcn_resnet_backbone",
    "build_dcn_resnet_fpn_backbone",
    "DeformROIPooler",
    "DeformStandardROIHeads",
    "DeformRes5ROIHeads",
    "RFCNROIHeads",
]
