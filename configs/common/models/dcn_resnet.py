"""dcn_det's ResNet stages for detectron2's ``ResNet(stem, stages, out_features, freeze_at)``:
the four bottleneck stages res2-res5, deformable where the fields say (the YAML keys
MODEL.RESNETS.DEFORM_ON_PER_STAGE, DEFORM_MODULATED, DEFORM_NUM_GROUPS,
MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE, MODEL.DCN.BORDER). Assign to
``model.backbone.bottom_up.stages`` (FPN) or ``model.backbone.stages`` (C4, R-FCN)."""
from detectron2.config import LazyCall as L

from dcn_det.modeling import make_dcn_resnet_stages

stages = L(make_dcn_resnet_stages)(
    depth=50,
    stride_in_1x1=True,
    norm="FrozenBN",
    res5_dilation=1,  # 2: R-FCN's dilated res5 (output stride 16)
    deform_on_per_stage=[False, False, False, False],  # res2..res5
    deform_last_blocks_per_stage=[-1, -1, -1, -1],  # -1: every block of a deformable stage
    deform_modulated=False,  # True: DCNv2
    deform_num_groups=1,
    border="dcnv2",
)
