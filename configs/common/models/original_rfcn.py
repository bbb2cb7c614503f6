"""The authors' R-FCN (configs/Original/Base-Original-RFCN.yaml): their backbone and RPN
(original_rpn.py) with dcn_det's RFCNROIHeads (rfcn.py) as they ran it at test time: 7x7
position-sensitive score maps, class-agnostic boxes with unit regression weights, boxes pooled
and clipped in their +1 convention, score > 0.001 and NMS 0.3, no OHEM."""
from .original_rpn import model
from .rfcn import model as _rfcn

model.roi_heads = _rfcn.roi_heads
model.roi_heads.update(
    batch_size_per_image=512,
    positive_fraction=0.25,
    ohem_rois=0,
    test_score_thresh=0.001,
    test_nms_thresh=0.3,
    pool_plus_one_boxes=True,  # MODEL.RFCN.POOL_PLUS_ONE_BOXES
    clip_plus_one=True,  # MODEL.ROI_HEADS.CLIP_PLUS_ONE
)
model.roi_heads.box2box_transform.weights = (1.0, 1.0, 1.0, 1.0)
