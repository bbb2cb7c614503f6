"""nn.Modules built on dcn_det.ops (torch only; no detectron2 dependency)."""
from .deform_conv import DeformConv, DeformConvWithOffset, ModulatedDeformConv, ModulatedDeformConvWithOffset

__all__ = ["DeformConv", "ModulatedDeformConv", "DeformConvWithOffset", "ModulatedDeformConvWithOffset"]
