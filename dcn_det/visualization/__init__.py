"""Pictures of what the deformable layers learned, in the library (as
``detectron2.utils.visualizer`` is): where stacked deformable convolutions sample, where
deformable RoI pooling moves its bins, drawn for ``tools/visualize_dcn.py``,
``tools/predict.py --show-sampling`` and the demo's figures.

The geometry is the operators' own (the offset layout of ``deform_conv2d``, the bin
geometry of ``deform_psroi_pool``); detectron2 is imported only by the functions that run
a detectron2 model.
"""
from .drawing import draw_bin_offsets, draw_points, pooling_figure, sampling_figure
from .pooling import BinOffsets, bin_rectangles, has_deformable_pooling, pooling_offsets
from .sampling import STAGE, OffsetFields, capture_offsets, deformable_stage, input_at_size, recording_offsets, sampling_points, to_image

__all__ = [
    "BinOffsets", "OffsetFields", "STAGE", "deformable_stage", "recording_offsets", "bin_rectangles", "capture_offsets", "draw_bin_offsets", "draw_points",
    "has_deformable_pooling", "input_at_size", "pooling_figure", "pooling_offsets", "sampling_figure", "sampling_points", "to_image",
]
