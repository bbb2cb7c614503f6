"""DeepLab's ResNet (detectron2.projects.deeplab: DeepLab stem, dilated res4/res5, res5 multi-grid)
with dcn_det's deformable blocks, for semantic segmentation with deformable convolution
(the DCNv1 paper's DeepLab: deformable 3x3 convs in res5).

Built like :func:`build_dcn_resnet_backbone`: the project's builder makes the plain network,
then the blocks that MODEL.RESNETS.DEFORM_ON_PER_STAGE and MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE
name are swapped for :class:`DeformBottleneck`, which keeps each block's dilation (res5's
multi-grid included) and detectron2's parameter names.
"""
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.resnet import ResNet
from detectron2.projects.deeplab import build_resnet_deeplab_backbone

from .dcn_resnet import make_stage_deformable, without_deform


@BACKBONE_REGISTRY.register()
def build_dcn_resnet_deeplab_backbone(cfg, input_shape: ShapeSpec) -> ResNet:
    """detectron2's ``build_resnet_deeplab_backbone`` (needs the keys of
    ``detectron2.projects.deeplab.add_deeplab_config``, which dcn_det.add_dcn_config adds)
    with dcn_det deformable blocks."""
    resnet = build_resnet_deeplab_backbone(without_deform(cfg), input_shape)
    for name, stage in zip(resnet.stage_names, resnet.stages):
        make_stage_deformable(cfg, stage, int(name[len("res"):]))
    return resnet.freeze(cfg.MODEL.BACKBONE.FREEZE_AT)
