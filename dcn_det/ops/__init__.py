"""Compiled deformable operators (torch only; no detectron2 dependency)."""
from ._cpu_isa import available_cpu_isas, cpu_isa
from .deform_conv import deform_conv2d
from .deform_psroi_pool import deform_psroi_pool
from .deform_psroi_pool_composite import BinStarts, deform_psroi_bin_starts
from .psroi_pool import psroi_pool

__all__ = ["deform_conv2d", "deform_psroi_pool", "psroi_pool", "deform_psroi_bin_starts", "BinStarts", "cpu_isa", "available_cpu_isas"]
