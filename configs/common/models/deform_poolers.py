"""Deformable RoI pooling (DCNv1, ``dpool``) and its modulated form (DCNv2, ``mdpool``) over
P2-P5, 7x7, one offset branch of two 1024-d fcs shared by the levels: MODEL.DCN.POOL "dpool" /
"mdpool" with the MODEL.DCN.POOL_* defaults. Assign to ``model.roi_heads.box_pooler``."""
from detectron2.config import LazyCall as L

from dcn_det.modeling import DeformROIPooler

dpool = L(DeformROIPooler)(
    output_size=7,
    scales=(1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32),
    in_channels=256,
    modulated=False,
    sample_per_part=4,  # MODEL.DCN.POOL_SAMPLE_PER_PART
    trans_std=0.1,  # MODEL.DCN.POOL_TRANS_STD
    offset_fc_dims=[1024, 1024],  # MODEL.DCN.POOL_OFFSET_FC_DIMS
    part_size=0,  # MODEL.DCN.POOL_PART_SIZE; 0: output_size
)
mdpool = dpool.copy()
mdpool.modulated = True
