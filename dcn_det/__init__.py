"""dcn_det: Deformable ConvNets (DCNv1 / DCNv2) operators, layers and detectron2 components.

`dcn_det.ops` (compiled operators) and `dcn_det.layers` (nn.Modules) depend on torch only.
When detectron2 is installed, `import dcn_det` also registers the detectron2 components
(backbones, ROI heads), the generated shapes_dcn_* data sets, and provides `dcn_det.add_dcn_config(cfg)`.
"""
import importlib.util

__version__ = "0.1.0"

if importlib.util.find_spec("detectron2") is not None:
    from . import modeling  # noqa: F401  (registers backbones and ROI heads)
    from .config import add_dcn_config
    from .data import register_shapes_datasets

    register_shapes_datasets()  # lazy: images are generated on first use
else:  # pragma: no cover - exercised only without detectron2

    def add_dcn_config(cfg):
        raise ImportError("dcn_det.add_dcn_config needs detectron2; see README.md for how to install it")


__all__ = ["add_dcn_config", "__version__"]
