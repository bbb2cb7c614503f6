"""Compiled deformable operators (torch only; no detectron2 dependency)."""
from .deform_conv import deform_conv2d

__all__ = ["deform_conv2d"]
