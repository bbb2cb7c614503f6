"""detectron2 ROI heads whose box pooler is deformable RoI pooling (MODEL.DCN.POOL).

- ``DeformStandardROIHeads``: detectron2's StandardROIHeads (FPN or single level, box head
  of MODEL.ROI_BOX_HEAD) with a :class:`DeformROIPooler`.
- ``DeformRes5ROIHeads``: detectron2's Res5ROIHeads (C4) with a :class:`DeformROIPooler`,
  and a res5 whose blocks are dcn_det's deformable ones where MODEL.RESNETS.DEFORM_ON_PER_STAGE[3]
  says (detectron2's own needs its compiled ops and a GPU).

With MODEL.DCN.POOL = "" both behave exactly like their detectron2 parents.

DeformStandardROIHeads also expresses the box head of the authors' Faster R-CNN (their
faster_rcnn/symbols/resnet_v1_101_rcnn*.py): MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM (a 1x1
conv + ReLU over the whole feature map before RoI pooling), POOL_PLUS_ONE_BOXES (pool the
boxes in the +1 convention) and MODEL.ROI_HEADS.CLIP_PLUS_ONE (the original's clip of the
detections), and soft-NMS (MODEL.ROI_HEADS.SOFT_NMS_*, the authors' FPN test); all off by default.
"""
from typing import Dict, List, Optional

import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.roi_heads import FastRCNNOutputLayers, Res5ROIHeads, StandardROIHeads
from detectron2.structures import Boxes, Instances
from fvcore.nn.weight_init import c2_msra_fill
from torch import Tensor, nn

from ..backbone.dcn_resnet import make_stage_deformable, without_deform
from ..plus_one_boxes import clip_predicted_plus_one, plus_one_corners
from ..soft_nms import SoftNMSOutputLayers
from .deform_pooler import build_deform_roi_pooler


class PlusOneBoxPooler(nn.Module):
    """Runs ``pooler`` on the boxes (x1, y1, x2 - 1, y2 - 1): the original's RoIs, whose x2, y2
    are the last pixel inside (its pooling ops add the 1 back)."""

    def __init__(self, pooler: nn.Module):
        super().__init__()
        self.pooler = pooler

    def forward(self, x: List[Tensor], box_lists: List[Boxes]) -> Tensor:
        return self.pooler(x, [Boxes(plus_one_corners(b.tensor)) for b in box_lists])


class ClipPlusOneOutputLayers(FastRCNNOutputLayers):
    """FastRCNNOutputLayers whose predicted boxes are clipped as the original clips them
    ([0, W-1] x [0, H-1] in the +1 convention); detectron2's clip after it changes nothing."""

    def predict_boxes(self, predictions, proposals: List[Instances]):
        boxes = super().predict_boxes(predictions, proposals)
        return clip_predicted_plus_one(boxes, proposals)


def box_reduce_conv(in_channels: int, out_channels: int) -> Conv2d:
    """The original Faster R-CNN's reduction before RoI pooling (MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM):
    a 1x1 conv + ReLU, MSRA-initialised; DeformStandardROIHeads' ``box_reduce``."""
    conv = Conv2d(in_channels, out_channels, kernel_size=1, activation=F.relu)
    c2_msra_fill(conv)
    return conv


@ROI_HEADS_REGISTRY.register()
class DeformStandardROIHeads(StandardROIHeads):
    DCN_POOL_SUPPORTED = True  # reads MODEL.DCN.POOL (dcn_det.config.check_cfg)

    @configurable
    def __init__(self, *, box_reduce: Optional[nn.Module] = None, **kwargs):
        super().__init__(**kwargs)
        self.box_reduce = box_reduce

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
        box = cfg.MODEL.ROI_BOX_HEAD
        reduce_dim = box.REDUCE_CONV_DIM
        box_reduce = None
        if reduce_dim > 0:
            box_reduce = box_reduce_conv(input_shape[in_features[0]].channels, reduce_dim)
            input_shape = {f: ShapeSpec(channels=reduce_dim, stride=input_shape[f].stride) for f in in_features}
        ret = super()._init_box_head(cfg, input_shape)
        if cfg.MODEL.DCN.POOL:
            ret["box_pooler"] = build_deform_roi_pooler(
                cfg,
                box.POOLER_RESOLUTION,
                tuple(1.0 / input_shape[f].stride for f in in_features),
                input_shape[in_features[0]].channels,
            )
        if box.POOL_PLUS_ONE_BOXES:
            ret["box_pooler"] = PlusOneBoxPooler(ret["box_pooler"])
        if cfg.MODEL.ROI_HEADS.SOFT_NMS_METHOD:  # clips as CLIP_PLUS_ONE says, too
            ret["box_predictor"] = SoftNMSOutputLayers(cfg, ret["box_head"].output_shape)
        elif cfg.MODEL.ROI_HEADS.CLIP_PLUS_ONE:
            ret["box_predictor"] = ClipPlusOneOutputLayers(cfg, ret["box_head"].output_shape)
        ret["box_reduce"] = box_reduce
        return ret

    def _forward_box(self, features: Dict[str, Tensor], proposals: List[Instances]):
        # The reduction conv feeds the box head only; mask / keypoint heads see the originals.
        if self.box_reduce is not None:
            features = {**features, **{f: self.box_reduce(features[f]) for f in self.box_in_features}}
        return super()._forward_box(features, proposals)


@ROI_HEADS_REGISTRY.register()
class DeformRes5ROIHeads(Res5ROIHeads):
    DCN_POOL_SUPPORTED = True

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        if cfg.MODEL.DCN.POOL:
            feature = cfg.MODEL.ROI_HEADS.IN_FEATURES[0]
            ret["pooler"] = build_deform_roi_pooler(
                cfg,
                cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION,
                (1.0 / input_shape[feature].stride,),
                input_shape[feature].channels,
            )
        return ret

    @classmethod
    def _build_res5_block(cls, cfg):
        res5, out_channels = super()._build_res5_block(without_deform(cfg))
        return make_stage_deformable(cfg, res5, 5), out_channels
