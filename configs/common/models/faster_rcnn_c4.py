"""Faster R-CNN R-50-C4 as configs/Base-DCN-RCNN-C4.yaml builds it: detectron2's Mask R-CNN C4
piece without the mask head, on dcn_det's ResNet stages, with DeformRes5ROIHeads whose res5 (the
box head) is ``make_dcn_stage`` (deformable when ``model.roi_heads.res5.deformable``: the YAML's
MODEL.RESNETS.DEFORM_ON_PER_STAGE[3]). ``dpool`` is the C4 deformable RoI pooling of the DCNv1
paper (14x14 on res4, 7x7 parts, offsets from one fc of the pooled features), for
``model.roi_heads.pooler``."""
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config

from dcn_det.modeling import DeformRes5ROIHeads, DeformROIPooler, make_dcn_stage

from .dcn_resnet import stages

model = get_config("common/models/mask_rcnn_c4.py").model
model.backbone.stages = stages
model.backbone.freeze_at = 2
model.roi_heads._target_ = DeformRes5ROIHeads
del model.roi_heads.mask_head
model.roi_heads.res5._target_ = make_dcn_stage
model.roi_heads.res5.update(
    deformable=False,  # True: deformable res5 (the stages' deform_* fields do not reach here)
    deform_last_blocks=-1,
    deform_modulated=False,
    deform_num_groups=1,
    border="dcnv2",
)

dpool = L(DeformROIPooler)(
    output_size=14,
    scales=(1.0 / 16,),
    in_channels=1024,
    modulated=False,
    sample_per_part=4,
    trans_std=0.1,
    offset_fc_dims=[],  # MODEL.DCN.POOL_OFFSET_FC_DIMS []: one fc to the offsets
    part_size=7,  # MODEL.DCN.POOL_PART_SIZE
)
