"""dcn_det: Deformable ConvNets (DCNv1 / DCNv2) operators, layers and detectron2 components.

`dcn_det.ops` (compiled operators) and `dcn_det.layers` (nn.Modules) depend on torch only,
and importing them (or this package) imports nothing of detectron2 and registers nothing.
The detectron2 side is loaded when asked for: `dcn_det.add_dcn_config(cfg)` adds the
MODEL.DCN.* / MODEL.RFCN.* keys and registers the backbones, ROI heads and the generated
shapes_dcn_* data sets with detectron2 (`dcn_det.register()` does the registering alone);
importing `dcn_det.modeling` registers the components too.
"""
__version__ = "0.1.0"

__all__ = ["add_dcn_config", "register", "__version__"]


def __getattr__(name):
    # Lazy (PEP 562): `import dcn_det.ops` runs this file, and must not import detectron2.
    if name in ("add_dcn_config", "register"):
        try:
            from . import config
        except ImportError as e:
            raise ImportError(
                f"dcn_det.{name} needs detectron2 ({e}); see README.md for how to install it"
            ) from e
        return getattr(config, name)
    raise AttributeError(f"module 'dcn_det' has no attribute {name!r}")
