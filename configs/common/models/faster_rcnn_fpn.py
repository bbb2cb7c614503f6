"""Faster R-CNN R-50-FPN as configs/Base-DCN-RCNN-FPN.yaml builds it: detectron2's Mask R-CNN
FPN piece without the mask head, on dcn_det's ResNet stages (deformable where
``model.backbone.bottom_up.stages.deform_on_per_stage`` says) and DeformStandardROIHeads.
``dpool`` / ``mdpool`` are the deformable box poolers (MODEL.DCN.POOL) to assign to
``model.roi_heads.box_pooler``."""
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config

from dcn_det.modeling import DeformROIPooler, DeformStandardROIHeads, make_dcn_resnet_stages

model = get_config("common/models/mask_rcnn_fpn.py").model
model.backbone.bottom_up.stages = L(make_dcn_resnet_stages)(
    depth=50,
    stride_in_1x1=True,
    norm="FrozenBN",
    deform_on_per_stage=[False, False, False, False],  # res2..res5
    deform_last_blocks_per_stage=[-1, -1, -1, -1],  # -1: every block of a deformable stage
    deform_modulated=False,  # True: DCNv2
    deform_num_groups=1,
    border="dcnv2",
)
model.backbone.bottom_up.freeze_at = 2
model.roi_heads._target_ = DeformStandardROIHeads
for key in ("mask_in_features", "mask_pooler", "mask_head"):
    del model.roi_heads[key]

# Deformable RoI pooling (DCNv1) and its modulated form (DCNv2) over P2-P5.
dpool = L(DeformROIPooler)(
    output_size=7,
    scales=(1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32),
    in_channels=256,
    modulated=False,
    sample_per_part=4,
    trans_std=0.1,
    offset_fc_dims=[1024, 1024],
    part_size=0,
)
mdpool = dpool.copy()
mdpool.modulated = True
