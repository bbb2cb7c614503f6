"""detectron2 ROI heads whose box pooler is deformable RoI pooling (MODEL.DCN.POOL).

- ``DeformStandardROIHeads``: detectron2's StandardROIHeads (FPN or single level, box head
  of MODEL.ROI_BOX_HEAD) with a :class:`DeformROIPooler`.
- ``DeformRes5ROIHeads``: detectron2's Res5ROIHeads (C4) with a :class:`DeformROIPooler`,
  and a res5 whose blocks are dcn_det's deformable ones where MODEL.RESNETS.DEFORM_ON_PER_STAGE[3]
  says (detectron2's own needs its compiled ops and a GPU).

With MODEL.DCN.POOL = "" both behave exactly like their detectron2 parents.
"""
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.roi_heads import Res5ROIHeads, StandardROIHeads

from ..backbone.dcn_resnet import make_stage_deformable, without_deform
from .deform_pooler import build_deform_roi_pooler


@ROI_HEADS_REGISTRY.register()
class DeformStandardROIHeads(StandardROIHeads):
    DCN_POOL_SUPPORTED = True  # reads MODEL.DCN.POOL (dcn_det.config.check_cfg)

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        ret = super()._init_box_head(cfg, input_shape)
        if cfg.MODEL.DCN.POOL:
            in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
            ret["box_pooler"] = build_deform_roi_pooler(
                cfg,
                cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION,
                tuple(1.0 / input_shape[f].stride for f in in_features),
                input_shape[in_features[0]].channels,
            )
        return ret


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
