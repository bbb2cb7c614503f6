"""Converters of other frameworks' trained weights into dcn_det / detectron2 checkpoints."""
from .mxnet_params import load_mxnet_params
from .mxnet_to_detectron2 import ConversionError, convert_mxnet_params

__all__ = ["load_mxnet_params", "convert_mxnet_params", "ConversionError"]
