"""Compiled deformable operators (torch only; no detectron2 dependency)."""
from ._cpu_isa import available_cpu_isas, cpu_isa
from .deform_conv import deform_conv2d
from .deform_psroi_pool import deform_psroi_pool
from .psroi_pool import psroi_pool

__all__ = ["deform_conv2d", "deform_psroi_pool", "psroi_pool", "cpu_isa", "available_cpu_isas"]
