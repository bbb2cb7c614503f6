"""nn.Modules built on dcn_det.ops (torch only; no detectron2 dependency)."""
from .deform_conv import DeformConv, DeformConvWithOffset, ModulatedDeformConv, ModulatedDeformConvWithOffset
from .deform_roi_pool import DeformPSRoIPool, DeformRoIPool, ModulatedDeformRoIPool
from .rois import as_rois

__all__ = [
    "DeformConv",
    "ModulatedDeformConv",
    "DeformConvWithOffset",
    "ModulatedDeformConvWithOffset",
    "DeformRoIPool",
    "ModulatedDeformRoIPool",
    "DeformPSRoIPool",
    "as_rois",
]
