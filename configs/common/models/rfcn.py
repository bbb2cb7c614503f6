"""R-FCN R-50 as configs/Base-DCN-RFCN.yaml builds it: detectron2's C4 backbone and RPN (from its
Mask R-CNN C4 piece) with res5 dilated (output stride 16) and kept in the backbone, 300
proposals, and dcn_det's RFCNROIHeads: position-sensitive score maps on res5, OHEM over 128
RoIs. ``model.roi_heads.deformable`` / ``.modulated`` switch on (modulated) deformable
PS-RoI pooling (the YAML's MODEL.RFCN.DEFORMABLE / MODULATED); every MODEL.RFCN.* key is a
field of ``model.roi_heads`` (lower case, as RFCNROIHeads' arguments)."""
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.matcher import Matcher

from dcn_det.modeling import RFCNROIHeads

from .dcn_resnet import stages

model = get_config("common/models/mask_rcnn_c4.py").model
model.backbone.stages = stages
model.backbone.stages.res5_dilation = 2  # MODEL.RESNETS.RES5_DILATION
model.backbone.out_features = ["res4", "res5"]
model.backbone.freeze_at = 2
model.proposal_generator.post_nms_topk = (300, 300)
model.roi_heads = L(RFCNROIHeads)(
    num_classes=80,
    batch_size_per_image=300,
    positive_fraction=1.0,
    proposal_matcher=L(Matcher)(thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False),
    in_feature="res5",
    in_channels=2048,
    feature_stride=16,
    box2box_transform=L(Box2BoxTransform)(weights=(10.0, 10.0, 5.0, 5.0)),
    hidden_dim=1024,  # MODEL.RFCN.HIDDEN_DIM
    group_size=7,  # MODEL.RFCN.GROUP_SIZE
    deformable=False,  # MODEL.RFCN.DEFORMABLE
    modulated=False,  # MODEL.RFCN.MODULATED (needs deformable)
    class_agnostic_offsets=False,
    trans_std=0.1,
    sample_per_part=4,
    ohem_rois=128,  # MODEL.RFCN.OHEM_ROIS; 0: no OHEM
    bbox_reg_loss_type="smooth_l1",
    smooth_l1_beta=0.0,
    head_init_std=0.01,
    hidden_init="normal",
    test_score_thresh=0.05,
    test_nms_thresh=0.5,
    test_topk_per_image=100,
)
