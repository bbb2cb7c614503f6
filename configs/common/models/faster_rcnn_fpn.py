"""Faster R-CNN R-50-FPN as configs/Base-DCN-RCNN-FPN.yaml builds it: the Mask R-CNN piece
(mask_rcnn_fpn.py) without the mask head. ``dpool`` / ``mdpool`` are the deformable box poolers
(MODEL.DCN.POOL) to assign to ``model.roi_heads.box_pooler``."""
from .deform_poolers import dpool, mdpool  # noqa: F401  (re-exported for the twins)
from .mask_rcnn_fpn import model

for key in ("mask_in_features", "mask_pooler", "mask_head"):
    del model.roi_heads[key]
