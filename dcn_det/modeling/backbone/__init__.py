from .dcn_resnet import DeformBottleneck, build_dcn_resnet_backbone, build_dcn_resnet_fpn_backbone

__all__ = ["DeformBottleneck", "build_dcn_resnet_backbone", "build_dcn_resnet_fpn_backbone"]
