"""Data sets (detectron2): the generated shapes data set of the demo."""
from .shapes import CLASSES, SPLITS, SplitSpec, generate_split, prepare, register_shapes_datasets

__all__ = ["CLASSES", "SPLITS", "SplitSpec", "generate_split", "prepare", "register_shapes_datasets"]
