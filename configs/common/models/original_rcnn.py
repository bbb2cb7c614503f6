"""The authors' Faster R-CNN (configs/Original/Base-Original-RCNN.yaml): their backbone and RPN
(original_rpn.py) with DeformStandardROIHeads on res5 as they ran it: a 1x1 conv + ReLU to 256
channels over res5 (``box_reduce``), 7x7 RoI pooling of the boxes in their +1 convention, two
1024-d fcs, unit regression weights, boxes clipped in the +1 convention, score > 0.001 and NMS
0.3. ``dpool`` is their deformable RoI pooling for ``model.roi_heads.box_pooler``."""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.model_zoo import get_config
from detectron2.modeling.poolers import ROIPooler

from dcn_det.modeling import ClipPlusOneOutputLayers, DeformStandardROIHeads, PlusOneBoxPooler, box_reduce_conv

from .faster_rcnn_c4 import dpool
from .original_rpn import model

_heads = get_config("common/models/mask_rcnn_fpn.py").model.roi_heads
model.roi_heads = _heads
model.roi_heads.update(
    _target_=DeformStandardROIHeads,
    box_in_features=["res5"],
    box_reduce=L(box_reduce_conv)(in_channels=2048, out_channels=256),  # MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM
    # MODEL.ROI_BOX_HEAD.POOL_PLUS_ONE_BOXES; pooler_type "ROIPool": rcnn_coco.yaml's POOLER_TYPE
    box_pooler=L(PlusOneBoxPooler)(
        pooler=L(ROIPooler)(output_size=7, scales=(1.0 / 16,), sampling_ratio=0, pooler_type="ROIAlignV2"),
    ),
)
for key in ("mask_in_features", "mask_pooler", "mask_head"):
    del model.roi_heads[key]
model.roi_heads.box_head.input_shape = ShapeSpec(channels=256, height=7, width=7)
model.roi_heads.box_predictor._target_ = ClipPlusOneOutputLayers  # MODEL.ROI_HEADS.CLIP_PLUS_ONE
model.roi_heads.box_predictor.update(test_score_thresh=0.001, test_nms_thresh=0.3)
model.roi_heads.box_predictor.box2box_transform.weights = (1.0, 1.0, 1.0, 1.0)

# The DCNv1 paper's C4 deformable RoI pooling (7x7 parts, one fc to the offsets) at 7x7 on the
# reduced 256 channels.
dpool.update(output_size=7, in_channels=256)
