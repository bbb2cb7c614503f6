"""R-FCN (Dai et al., 2016) as a detectron2 ROI head, with (modulated) deformable
position-sensitive RoI pooling (Dai et al., 2017; Zhu et al., 2019).

On a single feature map (ResNet res5 at stride 16, RESNETS.RES5_DILATION 2):
  1x1 conv to MODEL.RFCN.HIDDEN_DIM + ReLU,
  1x1 convs to k*k*(C+1) class score maps and k*k*4 class-agnostic box maps,
  PS-RoI pooling (plain: bilinear samples per bin, or MODEL.RFCN.INTEGER_BINS the original's
  mean over whole pixels; or deformable with offsets from a zero-initialised conv),
  average voting over the k x k bins -> class logits [R, C+1] and box deltas [R, 4],
  softmax cross-entropy + smooth-L1 (or GIoU) loss, optionally on the hardest RoIs only (OHEM),
  and detectron2's Fast R-CNN inference (score threshold, per-class NMS, detections per image).
Class index C is background, as everywhere in detectron2.

Training from scratch with SGD (the demo): average voting divides the gradient reaching each
of the k*k score maps by k*k, so the std-0.01 head of the original barely moves in a few
hundred iterations. MODEL.RFCN.HIDDEN_INIT "msra" and a learning-rate factor for the head's
1x1 convs (an optimizer parameter group: SOLVER.PARAM_LR_FACTORS, see dcn_det.solver) let it
learn; the defaults keep the original head.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, cat
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.poolers import convert_boxes_to_pooler_format
from detectron2.modeling.roi_heads import ROIHeads
from detectron2.modeling.roi_heads.fast_rcnn import fast_rcnn_inference
from detectron2.structures import Boxes, Instances
from fvcore.nn import giou_loss, smooth_l1_loss
from fvcore.nn.weight_init import c2_msra_fill
from torch import Tensor, nn

from dcn_det.layers import DeformPSRoIPool
from dcn_det.ops import deform_psroi_pool, psroi_pool

from ..plus_one_boxes import clip_plus_one, plus_one_corners


@ROI_HEADS_REGISTRY.register()
class RFCNROIHeads(ROIHeads):
    """R-FCN head; see the module docstring. Configured by MODEL.RFCN.* and detectron2's
    MODEL.ROI_HEADS.* (classes, sampling, test thresholds)."""

    @configurable
    def __init__(
        self,
        *,
        in_feature: str,
        in_channels: int,
        feature_stride: int,
        box2box_transform: Box2BoxTransform,
        hidden_dim: int = 1024,
        group_size: int = 7,
        deformable: bool = False,
        modulated: bool = False,
        class_agnostic_offsets: bool = False,
        trans_std: float = 0.1,
        sample_per_part: int = 4,
        ohem_rois: int = 0,
        bbox_reg_loss_type: str = "smooth_l1",
        smooth_l1_beta: float = 0.0,
        head_init_std: float = 0.01,
        hidden_init: str = "normal",
        test_score_thresh: float = 0.05,
        test_nms_thresh: float = 0.5,
        test_topk_per_image: int = 100,
        pool_plus_one_boxes: bool = False,
        clip_plus_one: bool = False,
        integer_bins: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if modulated and not deformable:
            raise ValueError("MODEL.RFCN.MODULATED needs MODEL.RFCN.DEFORMABLE")
        if integer_bins and deformable:
            raise ValueError("MODEL.RFCN.INTEGER_BINS is the plain head's pooling; deformable PS-RoI pooling samples")
        if bbox_reg_loss_type not in ("smooth_l1", "giou"):
            raise ValueError(f'MODEL.RFCN.BBOX_REG_LOSS_TYPE must be "smooth_l1" or "giou", got {bbox_reg_loss_type!r}')
        if hidden_init not in ("normal", "msra"):
            raise ValueError(f'MODEL.RFCN.HIDDEN_INIT must be "normal" or "msra", got {hidden_init!r}')
        if not head_init_std > 0:
            raise ValueError(f"MODEL.RFCN.HEAD_INIT_STD must be > 0, got {head_init_std}")
        self.in_feature = in_feature
        self.spatial_scale = 1.0 / feature_stride
        self.group_size = group_size
        self.sample_per_part = sample_per_part
        self.box2box_transform = box2box_transform
        self.ohem_rois = ohem_rois
        self.bbox_reg_loss_type = bbox_reg_loss_type
        self.smooth_l1_beta = smooth_l1_beta
        self.test_score_thresh = test_score_thresh
        self.test_nms_thresh = test_nms_thresh
        self.test_topk_per_image = test_topk_per_image
        self.pool_plus_one_boxes = pool_plus_one_boxes
        self.clip_plus_one = clip_plus_one
        self.integer_bins = integer_bins

        k2 = group_size * group_size
        scores = self.num_classes + 1
        self.conv_new = Conv2d(in_channels, hidden_dim, kernel_size=1, activation=F.relu)
        self.rfcn_cls = Conv2d(hidden_dim, k2 * scores, kernel_size=1)
        self.rfcn_bbox = Conv2d(hidden_dim, k2 * 4, kernel_size=1)
        for conv in (self.conv_new, self.rfcn_cls, self.rfcn_bbox):
            if conv is self.conv_new and hidden_init == "msra":
                c2_msra_fill(conv)
            else:
                nn.init.normal_(conv.weight, std=head_init_std)
                nn.init.zeros_(conv.bias)
        self.cls_pool: Optional[DeformPSRoIPool] = None
        self.bbox_pool: Optional[DeformPSRoIPool] = None
        if deformable:
            common = dict(group_size=group_size, spatial_scale=self.spatial_scale, sample_per_part=sample_per_part, trans_std=trans_std, modulated=modulated)
            self.cls_pool = DeformPSRoIPool(hidden_dim, scores, class_agnostic_offsets=class_agnostic_offsets, **common)
            # Box maps are class-agnostic: one offset field, as in the original.
            self.bbox_pool = DeformPSRoIPool(hidden_dim, 4, class_agnostic_offsets=True, **common)

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg)
        in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
        if len(in_features) != 1:
            raise ValueError(f"RFCNROIHeads pools one feature map; MODEL.ROI_HEADS.IN_FEATURES is {in_features}")
        feature = in_features[0]
        rfcn = cfg.MODEL.RFCN
        ret.update(
            in_feature=feature,
            in_channels=input_shape[feature].channels,
            feature_stride=input_shape[feature].stride,
            box2box_transform=Box2BoxTransform(weights=cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS),
            hidden_dim=rfcn.HIDDEN_DIM,
            group_size=rfcn.GROUP_SIZE,
            deformable=rfcn.DEFORMABLE,
            modulated=rfcn.MODULATED,
            class_agnostic_offsets=rfcn.CLASS_AGNOSTIC_OFFSETS,
            trans_std=rfcn.TRANS_STD,
            sample_per_part=rfcn.SAMPLE_PER_PART,
            ohem_rois=rfcn.OHEM_ROIS,
            bbox_reg_loss_type=rfcn.BBOX_REG_LOSS_TYPE,
            smooth_l1_beta=rfcn.SMOOTH_L1_BETA,
            head_init_std=rfcn.HEAD_INIT_STD,
            hidden_init=rfcn.HIDDEN_INIT,
            test_score_thresh=cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
            test_nms_thresh=cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
            test_topk_per_image=cfg.TEST.DETECTIONS_PER_IMAGE,
            pool_plus_one_boxes=rfcn.POOL_PLUS_ONE_BOXES,
            clip_plus_one=cfg.MODEL.ROI_HEADS.CLIP_PLUS_ONE,
            integer_bins=rfcn.INTEGER_BINS,
        )
        return ret

    def predict(self, feature: Tensor, boxes: List[Boxes]) -> Tuple[Tensor, Tensor]:
        """Class logits ``[R, C+1]`` and class-agnostic box deltas ``[R, 4]`` for the boxes."""
        x = self.hidden(feature)
        cls_maps, bbox_maps = self.rfcn_cls(x), self.rfcn_bbox(x)
        rois = convert_boxes_to_pooler_format(boxes)
        if self.pool_plus_one_boxes:  # the original's boxes: x2, y2 are the last pixel inside
            rois = plus_one_corners(rois)
        if self.cls_pool is not None:
            cls_bins = self.cls_pool(x, cls_maps, rois)
            bbox_bins = self.bbox_pool(x, bbox_maps, rois)
        else:
            cls_bins = self._ps_pool(cls_maps, rois, self.num_classes + 1)
            bbox_bins = self._ps_pool(bbox_maps, rois, 4)
        # Average voting over the k x k position-sensitive bins.
        return cls_bins.mean(dim=(2, 3)), bbox_bins.mean(dim=(2, 3))

    def hidden(self, feature: Tensor) -> Tensor:
        """The hidden features ``[N, HIDDEN_DIM, H, W]`` the score maps (and deformable
        offsets) are computed from."""
        return self.conv_new(feature)

    def _ps_pool(self, maps: Tensor, rois: Tensor, output_dim: int) -> Tensor:
        k = self.group_size
        if self.integer_bins:  # the original R-FCN's whole-pixel bins (MXNet PSROIPooling)
            return psroi_pool(maps, rois, self.spatial_scale, output_dim, k, k)
        return deform_psroi_pool(maps, rois, None, self.spatial_scale, output_dim, k, k, k, self.sample_per_part, no_trans=True)

    def forward(self, images, features: Dict[str, Tensor], proposals: List[Instances], targets=None):
        del images
        if self.training:
            if targets is None:
                raise ValueError("RFCNROIHeads needs targets in training mode")
            proposals = self.label_and_sample_proposals(proposals, targets)
        del targets
        boxes = [p.proposal_boxes for p in proposals]
        logits, deltas = self.predict(features[self.in_feature], boxes)
        if self.training:
            return proposals, self.losses(logits, deltas, proposals)
        return self.inference(logits, deltas, proposals), {}

    def per_roi_losses(self, logits: Tensor, deltas: Tensor, proposals: List[Instances]) -> Tuple[Tensor, Tensor]:
        """Classification and box-regression loss of every RoI (box loss 0 for background)."""
        gt_classes = cat([p.gt_classes for p in proposals])
        proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals])
        gt_boxes = cat([(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals])
        loss_cls = F.cross_entropy(logits, gt_classes, reduction="none")
        loss_box = torch.zeros_like(loss_cls)
        fg = torch.nonzero((gt_classes >= 0) & (gt_classes < self.num_classes), as_tuple=True)[0]
        if fg.numel():
            if self.bbox_reg_loss_type == "smooth_l1":
                targets = self.box2box_transform.get_deltas(proposal_boxes[fg], gt_boxes[fg])
                loss_box[fg] = smooth_l1_loss(deltas[fg], targets, self.smooth_l1_beta, reduction="none").sum(dim=1)
            else:
                predicted = self.box2box_transform.apply_deltas(deltas[fg], proposal_boxes[fg])
                loss_box[fg] = giou_loss(predicted, gt_boxes[fg], reduction="none")
        return loss_cls, loss_box

    def losses(self, logits: Tensor, deltas: Tensor, proposals: List[Instances]) -> Dict[str, Tensor]:
        loss_cls, loss_box = self.per_roi_losses(logits, deltas, proposals)
        if self.ohem_rois > 0:
            keep = []
            start = 0
            for p in proposals:
                total = (loss_cls[start : start + len(p)] + loss_box[start : start + len(p)]).detach()
                keep.append(start + total.topk(min(self.ohem_rois, len(p))).indices)
                start += len(p)
            keep = cat(keep)
            loss_cls, loss_box = loss_cls[keep], loss_box[keep]
        # detectron2's normalisation: both losses averaged over all (kept) RoIs.
        count = max(loss_cls.numel(), 1)
        return {"loss_cls": loss_cls.sum() / count, "loss_box_reg": loss_box.sum() / count}

    def inference(self, logits: Tensor, deltas: Tensor, proposals: List[Instances]) -> List[Instances]:
        # shape[0], not len(): under the TorchScript ONNX exporter's tracing shape[0] stays a
        # traced size, while len() would bake the example's proposal count into the graph
        # (detectron2 patches len() for its own heads only, in TracingAdapter).
        counts = [p.proposal_boxes.tensor.shape[0] for p in proposals]
        proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals])
        boxes = self.box2box_transform.apply_deltas(deltas, proposal_boxes).split(counts)
        if self.clip_plus_one:  # the original's clip; detectron2's own clip after it changes nothing
            boxes = [clip_plus_one(b, p.image_size) for b, p in zip(boxes, proposals)]
        probs = F.softmax(logits, dim=-1).split(counts)
        instances, _ = fast_rcnn_inference(
            boxes,
            probs,
            [p.image_size for p in proposals],
            self.test_score_thresh,
            self.test_nms_thresh,
            self.test_topk_per_image,
        )
        return instances
