from .deform_cascade_roi_heads import DeformCascadeROIHeads
from .deform_pooler import DeformROIPooler, build_deform_roi_pooler
from .deform_roi_heads import (
    ClipPlusOneOutputLayers,
    DeformRes5ROIHeads,
    DeformStandardROIHeads,
    PlusOneBoxPooler,
    box_reduce_conv,
)
from .rfcn import RFCNROIHeads

__all__ = [
    "DeformROIPooler",
    "build_deform_roi_pooler",
    "DeformStandardROIHeads",
    "DeformRes5ROIHeads",
    "DeformCascadeROIHeads",
    "RFCNROIHeads",
    "PlusOneBoxPooler",
    "ClipPlusOneOutputLayers",
    "box_reduce_conv",
]
