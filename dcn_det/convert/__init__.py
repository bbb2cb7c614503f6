"""Converters of other frameworks' trained weights into dcn_det / detectron2 checkpoints."""
from .mxnet_params import load_mxnet_params

__all__ = ["load_mxnet_params"]
