"""dcn_det: Deformable ConvNets (DCNv1 / DCNv2) operators, layers and detectron2 components.

`dcn_det.ops` (compiled operators) and `dcn_det.layers` (nn.Modules) depend on torch only.
"""
__version__ = "0.1.0"
