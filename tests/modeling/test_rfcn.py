"""RFCNROIHeads: shapes, deformable / modulated PS-RoI pooling at init, losses (smooth-L1,
GIoU, OHEM), inference and config validation."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_roi_heads
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from dcn_det import add_dcn_config
from dcn_det.layers import DeformPSRoIPool
from dcn_det.modeling import RFCNROIHeads

NUM_CLASSES = 3
K = 3
IMAGE = (160, 192)
SHAPES = {"res5": ShapeSpec(channels=32, stride=16)}


def _cfg(**rfcn):
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.ROI_HEADS.NAME = "RFCNROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["res5"]
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = NUM_CLASSES
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.MODEL.ROI_HEADS.POSITIVE_FRACTION = 1.0
    cfg.MODEL.RFCN.GROUP_SIZE = K
    cfg.MODEL.RFCN.HIDDEN_DIM = 16
    for key, value in rfcn.items():
        cfg.MODEL.RFCN[key] = value
    return cfg


def _heads(**rfcn):
    torch.manual_seed(0)
    return build_roi_heads(_cfg(**rfcn), SHAPES)


def _features(seed=0, batch=2):
    g = torch.Generator().manual_seed(seed)
    return {"res5": torch.randn(batch, 32, IMAGE[0] // 16, IMAGE[1] // 16, generator=g)}


def _proposals(counts=(20, 12), seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in counts:
        xy = torch.rand(n, 2, generator=g) * torch.tensor([120.0, 100.0])
        wh = torch.rand(n, 2, generator=g) * 60 + 16
        p = Instances(IMAGE)
        p.proposal_boxes = Boxes(torch.cat([xy, xy + wh], 1))
        p.objectness_logits = torch.randn(n, generator=g)
        out.append(p)
    return out


def _targets():
    out = []
    for boxes, classes in (([[20.0, 30.0, 80.0, 90.0], [100.0, 40.0, 170.0, 120.0]], [0, 2]), ([[50.0, 60.0, 90.0, 100.0]], [1])):
        t = Instances(IMAGE)
        t.gt_boxes = Boxes(torch.tensor(boxes))
        t.gt_classes = torch.tensor(classes)
        out.append(t)
    return out


def _boxes(proposals):
    return [p.proposal_boxes for p in proposals]


VARIANTS = {
    "plain": {},
    "deformable": {"DEFORMABLE": True},
    "deformable_class_agnostic": {"DEFORMABLE": True, "CLASS_AGNOSTIC_OFFSETS": True},
    "modulated": {"DEFORMABLE": True, "MODULATED": True},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_predict_gives_class_logits_and_class_agnostic_deltas(variant):
    heads = _heads(**VARIANTS[variant])
    logits, deltas = heads.predict(_features()["res5"], _boxes(_proposals()))
    assert logits.shape == (32, NUM_CLASSES + 1)
    assert deltas.shape == (32, 4)


def test_score_and_box_maps_have_k2_channels_per_class_and_per_coordinate():
    heads = _heads()
    assert heads.rfcn_cls.out_channels == K * K * (NUM_CLASSES + 1)
    assert heads.rfcn_bbox.out_channels == K * K * 4
    assert heads.conv_new.out_channels == 16


@pytest.mark.parametrize("variant", ["deformable", "deformable_class_agnostic", "modulated"])
def test_deformable_variants_pool_with_deformable_psroi_pools(variant):
    heads = _heads(**VARIANTS[variant])
    assert isinstance(heads.cls_pool, DeformPSRoIPool) and isinstance(heads.bbox_pool, DeformPSRoIPool)
    assert heads.cls_pool.modulated == heads.bbox_pool.modulated == (variant == "modulated")
    assert heads.cls_pool.num_offset_classes == (1 if variant == "deformable_class_agnostic" else NUM_CLASSES + 1)
    assert heads.bbox_pool.num_offset_classes == 1


def test_plain_variant_has_no_deformable_pool():
    heads = _heads()
    assert heads.cls_pool is None and heads.bbox_pool is None


@pytest.mark.parametrize("variant, scale", [("deformable", 1.0), ("deformable_class_agnostic", 1.0), ("modulated", 0.5)])
def test_deformable_variants_at_init_equal_plain_rfcn(variant, scale):
    """Zero-initialised offsets: deformable PS-RoI pooling starts as plain PS-RoI pooling
    (modulated: times the initial mask 1/2)."""
    plain, deformable = _heads(), _heads(**VARIANTS[variant])
    deformable.load_state_dict(plain.state_dict(), strict=False)
    feature, boxes = _features()["res5"], _boxes(_proposals())
    expected = plain.predict(feature, boxes)
    for got, want in zip(deformable.predict(feature, boxes), expected):
        torch.testing.assert_close(got, want * scale)


def test_position_sensitive_score_of_a_bin_comes_from_its_own_score_map():
    """Only bin (0, 0)'s maps of class 1 are non-zero: class 1's vote is that bin's value / k^2."""
    heads = _heads()
    rois = [Boxes(torch.tensor([[32.0, 32.0, 127.0, 127.0]]))]
    maps = torch.zeros(1, K * K * (NUM_CLASSES + 1), 10, 12)
    maps[:, 1 * K * K + 0] = 9.0  # channel (class 1, bin 0, 0)
    pooled = heads._ps_pool(maps, torch.cat([torch.zeros(1, 1), rois[0].tensor], 1), NUM_CLASSES + 1)
    votes = pooled.mean(dim=(2, 3))
    torch.testing.assert_close(votes, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_training_losses_are_finite_and_reach_every_branch(variant):
    heads = _heads(**VARIANTS[variant])
    with EventStorage():
        _, losses = heads(None, _features(), _proposals(), _targets())
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert heads.rfcn_cls.weight.grad.abs().sum() > 0
    assert heads.rfcn_bbox.weight.grad.abs().sum() > 0
    if heads.cls_pool is not None:
        assert heads.cls_pool.conv_offset.weight.grad.abs().sum() > 0
        assert heads.bbox_pool.conv_offset.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("ohem", [0, 8])
def test_training_with_an_image_without_objects_has_finite_losses(ohem):
    heads = _heads(DEFORMABLE=True, OHEM_ROIS=ohem)
    targets = _targets()
    empty = Instances(IMAGE)
    empty.gt_boxes = Boxes(torch.zeros(0, 4))
    empty.gt_classes = torch.zeros(0, dtype=torch.int64)
    with EventStorage():
        _, losses = heads(None, _features(), _proposals(), [targets[0], empty])
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()


def test_ohem_with_an_image_without_rois_keeps_the_other_images_rois():
    heads = _heads(OHEM_ROIS=3)
    proposals = _labelled((0, 5))
    logits, deltas = _random_predictions(5)
    loss_cls, loss_box = heads.per_roi_losses(logits, deltas, proposals)
    keep = (loss_cls + loss_box).argsort(descending=True)[:3]
    torch.testing.assert_close(heads.losses(logits, deltas, proposals)["loss_cls"], loss_cls[keep].mean())


def test_training_without_targets_raises():
    heads = _heads()
    with pytest.raises(ValueError, match="targets"):
        heads(None, _features(), _proposals())


# --- losses on a constructed example ---------------------------------------------------------


def _labelled(counts, seed=0):
    """Proposals as label_and_sample_proposals returns them: gt_classes (NUM_CLASSES =
    background) and gt_boxes, with a mix of foreground and background."""
    g = torch.Generator().manual_seed(seed)
    out = _proposals(counts, seed)
    for p in out:
        n = len(p)
        p.gt_classes = torch.randint(0, NUM_CLASSES + 1, (n,), generator=g)
        if n:
            p.gt_classes[0], p.gt_classes[-1] = 0, NUM_CLASSES
        p.gt_boxes = Boxes(p.proposal_boxes.tensor + torch.randn(n, 4, generator=g) * 4)
    return out


def _random_predictions(total, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(total, NUM_CLASSES + 1, generator=g) * 2, torch.randn(total, 4, generator=g) * 0.5


def test_per_roi_losses_are_cross_entropy_and_box_loss_of_foreground_rois():
    heads = _heads()
    proposals = _labelled((6, 4))
    logits, deltas = _random_predictions(10)
    loss_cls, loss_box = heads.per_roi_losses(logits, deltas, proposals)
    gt = torch.cat([p.gt_classes for p in proposals])
    torch.testing.assert_close(loss_cls, F.cross_entropy(logits, gt, reduction="none"))
    assert (loss_box[gt == NUM_CLASSES] == 0).all()
    assert (loss_box[gt < NUM_CLASSES] > 0).all()


def test_losses_without_ohem_average_over_all_rois():
    heads = _heads()
    proposals = _labelled((6, 4))
    logits, deltas = _random_predictions(10)
    loss_cls, loss_box = heads.per_roi_losses(logits, deltas, proposals)
    losses = heads.losses(logits, deltas, proposals)
    torch.testing.assert_close(losses["loss_cls"], loss_cls.mean())
    torch.testing.assert_close(losses["loss_box_reg"], loss_box.sum() / 10)


@pytest.mark.parametrize("ohem, counts, kept", [(3, (6, 2), (3, 2)), (4, (5, 7), (4, 4)), (10, (5, 7), (5, 7))])
def test_ohem_keeps_the_min_of_ohem_rois_and_n_hardest_rois_per_image(ohem, counts, kept):
    heads = _heads(OHEM_ROIS=ohem)
    proposals = _labelled(counts, seed=ohem)
    logits, deltas = _random_predictions(sum(counts), seed=ohem)
    loss_cls, loss_box = heads.per_roi_losses(logits, deltas, proposals)
    total = loss_cls + loss_box
    index, start = [], 0
    for n, k in zip(counts, kept):
        index += (start + total[start : start + n].argsort(descending=True)[:k]).tolist()
        start += n
    losses = heads.losses(logits, deltas, proposals)
    torch.testing.assert_close(losses["loss_cls"], loss_cls[index].sum() / sum(kept))
    torch.testing.assert_close(losses["loss_box_reg"], loss_box[index].sum() / sum(kept))


def test_ohem_only_backpropagates_through_the_kept_rois():
    heads = _heads(OHEM_ROIS=2)
    proposals = _labelled((5, 4), seed=3)
    logits, deltas = _random_predictions(9, seed=3)
    logits.requires_grad_()
    loss_cls, loss_box = heads.per_roi_losses(logits, deltas, proposals)
    heads.losses(logits, deltas, proposals)["loss_cls"].backward()
    with_grad = (logits.grad.abs().sum(dim=1) > 0).nonzero()[:, 0].tolist()
    assert len(with_grad) == 4 and sum(i < 5 for i in with_grad) == 2


@pytest.mark.parametrize("loss_type", ["smooth_l1", "giou"])
def test_box_loss_is_zero_for_deltas_that_reach_the_ground_truth(loss_type):
    heads = _heads(BBOX_REG_LOSS_TYPE=loss_type)
    proposals = _labelled((6, 4))
    boxes = torch.cat([p.proposal_boxes.tensor for p in proposals])
    gt_boxes = torch.cat([p.gt_boxes.tensor for p in proposals])
    exact = heads.box2box_transform.get_deltas(boxes, gt_boxes)
    logits, noisy = _random_predictions(10)
    assert heads.losses(logits, exact, proposals)["loss_box_reg"] < 1e-5
    assert heads.losses(logits, exact + noisy, proposals)["loss_box_reg"] > 1e-2


def test_giou_box_loss_is_giou_of_the_decoded_boxes():
    from fvcore.nn import giou_loss

    heads = _heads(BBOX_REG_LOSS_TYPE="giou")
    proposals = _labelled((6, 4))
    logits, deltas = _random_predictions(10)
    _, loss_box = heads.per_roi_losses(logits, deltas, proposals)
    gt = torch.cat([p.gt_classes for p in proposals])
    fg = gt < NUM_CLASSES
    boxes = torch.cat([p.proposal_boxes.tensor for p in proposals])
    decoded = heads.box2box_transform.apply_deltas(deltas[fg], boxes[fg])
    expected = giou_loss(decoded, torch.cat([p.gt_boxes.tensor for p in proposals])[fg], reduction="none")
    torch.testing.assert_close(loss_box[fg], expected)


def test_giou_training_step_is_finite_and_differentiable():
    heads = _heads(BBOX_REG_LOSS_TYPE="giou", DEFORMABLE=True)
    with EventStorage():
        _, losses = heads(None, _features(), _proposals(), _targets())
    assert torch.isfinite(losses["loss_box_reg"]) and losses["loss_box_reg"] > 0
    losses["loss_box_reg"].backward()
    assert heads.rfcn_bbox.weight.grad.abs().sum() > 0


# --- inference --------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_inference_returns_at_most_detections_per_image(variant):
    cfg = _cfg(**VARIANTS[variant])
    cfg.TEST.DETECTIONS_PER_IMAGE = 7
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    torch.manual_seed(0)
    heads = build_roi_heads(cfg, SHAPES).eval()
    with torch.no_grad():
        instances, losses = heads(None, _features(), _proposals((40, 2)))
    assert losses == {}
    assert len(instances[0]) == 7  # capped
    assert 0 < len(instances[1]) <= 2 * NUM_CLASSES  # one candidate per proposal and class
    for inst in instances:
        assert inst.image_size == IMAGE
        assert set(inst.get_fields()) == {"pred_boxes", "scores", "pred_classes"}
        assert ((inst.pred_classes >= 0) & (inst.pred_classes < NUM_CLASSES)).all()
        box = inst.pred_boxes.tensor
        assert (box[:, 0] >= 0).all() and (box[:, 2] <= IMAGE[1]).all() and (box[:, 3] <= IMAGE[0]).all()


def test_inference_applies_the_score_threshold():
    cfg = _cfg()
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.99
    heads = build_roi_heads(cfg, SHAPES).eval()
    with torch.no_grad():
        instances, _ = heads(None, _features(), _proposals())
    assert [len(i) for i in instances] == [0, 0]  # untrained: probabilities near 1 / (C + 1)


def test_inference_with_no_proposals_returns_empty_instances():
    heads = _heads(DEFORMABLE=True).eval()
    with torch.no_grad():
        instances, _ = heads(None, _features(), _proposals((0, 4)))
    assert len(instances[0]) == 0 and len(instances[1]) > 0


# --- configuration ----------------------------------------------------------------------------


def test_modulated_without_deformable_raises_value_error():
    with pytest.raises(ValueError, match="DEFORMABLE"):
        build_roi_heads(_cfg(MODULATED=True), SHAPES)


def test_unknown_box_loss_type_raises_value_error():
    with pytest.raises(ValueError, match="BBOX_REG_LOSS_TYPE"):
        build_roi_heads(_cfg(BBOX_REG_LOSS_TYPE="l2"), SHAPES)


def test_more_than_one_input_feature_raises_value_error():
    cfg = _cfg()
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["res4", "res5"]
    with pytest.raises(ValueError, match="one feature map"):
        build_roi_heads(cfg, {"res4": ShapeSpec(channels=16, stride=16), **SHAPES})


def test_heads_are_registered_and_read_the_config():
    cfg = _cfg(OHEM_ROIS=64, TRANS_STD=0.2, SAMPLE_PER_PART=2, SMOOTH_L1_BETA=0.5, DEFORMABLE=True)
    heads = build_roi_heads(cfg, SHAPES)
    assert type(heads) is RFCNROIHeads
    assert (heads.ohem_rois, heads.smooth_l1_beta, heads.sample_per_part) == (64, 0.5, 2)
    assert heads.cls_pool.trans_std == 0.2 and heads.spatial_scale == 1 / 16


@pytest.mark.parametrize("deformable", [False, True], ids=["psroi", "dpsroi"])
def test_pool_plus_one_boxes_pools_each_box_one_pixel_smaller(deformable):
    """MODEL.RFCN.POOL_PLUS_ONE_BOXES: the head pools (x1, y1, x2 - 1, y2 - 1), i.e. gives the
    same scores as the plain head on boxes shrunk by one pixel at the far corner, and others
    than on the boxes themselves."""
    original, plain = _heads(POOL_PLUS_ONE_BOXES=True, DEFORMABLE=deformable), _heads(DEFORMABLE=deformable)
    for m in original.modules():
        if isinstance(m, DeformPSRoIPool):  # non-zero pooling offsets: the deformable path matters
            for p in m.parameters():
                torch.nn.init.normal_(p, std=0.05)
    plain.load_state_dict(original.state_dict())
    feature = _features()["res5"]
    boxes = [p.proposal_boxes for p in _proposals()]
    shrunk = [Boxes(b.tensor - torch.tensor([0.0, 0.0, 1.0, 1.0])) for b in boxes]
    with torch.no_grad():
        got, want, unshrunk = original.predict(feature, boxes), plain.predict(feature, shrunk), plain.predict(feature, boxes)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (got[0] - unshrunk[0]).abs().max() > 1e-6


def test_integer_bins_pool_with_psroi_pool():
    """MODEL.RFCN.INTEGER_BINS: the plain head's scores are the average votes of psroi_pool's
    whole-pixel bins (the op itself: tests/ops/test_psroi_pool.py, and against MXNet)."""
    from dcn_det.ops import psroi_pool

    heads = _heads(INTEGER_BINS=True)
    feature = _features()["res5"]
    boxes = [p.proposal_boxes for p in _proposals()]
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b.tensor], 1) for i, b in enumerate(boxes)])
    with torch.no_grad():
        logits, deltas = heads.predict(feature, boxes)
        x = heads.hidden(feature)
        want_logits = psroi_pool(heads.rfcn_cls(x), rois, 1 / 16, NUM_CLASSES + 1, K, K).mean(dim=(2, 3))
        want_deltas = psroi_pool(heads.rfcn_bbox(x), rois, 1 / 16, 4, K, K).mean(dim=(2, 3))
        sampled, _ = _heads().predict(feature, boxes)
    torch.testing.assert_close(logits, want_logits, rtol=0, atol=0)
    torch.testing.assert_close(deltas, want_deltas, rtol=0, atol=0)
    assert (logits - sampled).abs().max() > 1e-6


def test_integer_bins_with_deformable_is_refused():
    with pytest.raises(ValueError, match="INTEGER_BINS"):
        _heads(INTEGER_BINS=True, DEFORMABLE=True)
    from dcn_det.config import ConfigError, check_cfg

    with pytest.raises(ConfigError, match="INTEGER_BINS"):
        check_cfg(_cfg(INTEGER_BINS=True, DEFORMABLE=True))
