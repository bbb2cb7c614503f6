"""Cascade R-CNN (detectron2's CascadeROIHeads) whose box head pools with deformable RoI
pooling (MODEL.DCN.POOL "dpool" / "mdpool") in every stage.

Each stage gets its own :class:`DeformROIPooler` (its own offset, and mask, branch): the
stages see boxes of increasing quality, and their offsets are learned from their own losses,
as their box heads are. ``box_pooler`` is then a ModuleList indexed by stage. With
MODEL.DCN.POOL = "" this is exactly detectron2's CascadeROIHeads (one shared ROIPooler).
"""
import torch
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.roi_heads import CascadeROIHeads
from torch import nn

from .deform_pooler import build_deform_roi_pooler


class _GradientScale(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``scale``."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


@ROI_HEADS_REGISTRY.register()
class DeformCascadeROIHeads(CascadeROIHeads):
    DCN_POOL_SUPPORTED = True  # reads MODEL.DCN.POOL

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        ret = super()._init_box_head(cfg, input_shape)
        if cfg.MODEL.DCN.POOL:
            in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
            scales = tuple(1.0 / input_shape[f].stride for f in in_features)
            resolution = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
            channels = input_shape[in_features[0]].channels
            ret["box_pooler"] = nn.ModuleList(
                build_deform_roi_pooler(cfg, resolution, scales, channels) for _ in ret["box_heads"]
            )
        return ret

    def _run_stage(self, features, proposals, stage):
        if not isinstance(self.box_pooler, nn.ModuleList):
            return super()._run_stage(features, proposals, stage)
        # detectron2 divides the gradient that each stage sends to the shared features by the
        # number of stages (the original averages the stage losses but not the head gradients).
        # Scaling before pooling keeps that for the features while each stage's own offset
        # branch, like its box head, gets its full gradient.
        if self.training:
            features = [_GradientScale.apply(f, 1.0 / self.num_cascade_stages) for f in features]
        box_features = self.box_pooler[stage](features, [p.proposal_boxes for p in proposals])
        return self.box_predictor[stage](self.box_head[stage](box_features))
