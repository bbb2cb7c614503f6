"""DeformROIPooler (FPN level routing, per-level scale), DeformStandardROIHeads and
DeformRes5ROIHeads (MODEL.DCN.POOL), against detectron2's ROIPooler / ROI heads."""
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.roi_heads import Res5ROIHeads, StandardROIHeads, build_roi_heads
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from dcn_det import add_dcn_config
from dcn_det.layers import DeformRoIPool, ModulatedDeformRoIPool
from dcn_det.modeling import DeformBottleneck, DeformRes5ROIHeads, DeformROIPooler, DeformStandardROIHeads
from dcn_det.ops import deform_psroi_pool

FPN_SCALES = (1 / 4, 1 / 8, 1 / 16, 1 / 32)
IMAGE = 512
CHANNELS = 4


def _square(cx, cy, side):
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


# (box, pyramid level index) by FPN's Eqn. 1: floor(4 + log2(sqrt(area) / 224)), clamped to
# [2, 5], minus 2.
ROUTED_BOXES = [
    (_square(100, 100, 20), 0),  # tiny: clamped to p2
    (_square(300, 200, 60), 0),
    (_square(256, 256, 112), 1),
    (_square(200, 300, 150), 1),
    (_square(256, 256, 224), 2),  # canonical size: p4
    (_square(256, 256, 300), 2),
    (_square(256, 256, 448), 3),
    ([0.0, 0.0, 511.0, 511.0], 3),  # clamped to p5
    ([10.0, 20.0, 10.0 + 448.0, 20.0 + 112.0], 2),  # sqrt(448 * 112) = 224
]


def _pyramid(seed=0, batch=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, CHANNELS, int(IMAGE * s), int(IMAGE * s), generator=g) for s in FPN_SCALES]


def _box_lists():
    boxes = torch.tensor([b for b, _ in ROUTED_BOXES])
    return [Boxes(boxes[:5]), Boxes(boxes[5:])]


def _levels():
    return torch.tensor([level for _, level in ROUTED_BOXES])


def _rois():
    lists = _box_lists()
    return torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b.tensor], 1) for i, b in enumerate(lists)])


def _randomize_offset_branches(pooler, seed=1, std=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in pooler.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


@pytest.mark.parametrize("modulated", [False, True], ids=["dpool", "mdpool"])
def test_pooler_routes_boxes_to_fpn_levels_by_detectron2s_rule(modulated):
    """Level l's map is filled with l + 1: the pooled value says which level a box came from."""
    pooler = DeformROIPooler(7, FPN_SCALES, CHANNELS, modulated=modulated, offset_fc_dims=(16,))
    features = [torch.full((2, CHANNELS, int(IMAGE * s), int(IMAGE * s)), float(level + 1)) for level, s in enumerate(FPN_SCALES)]
    out = pooler(features, _box_lists())
    mask = 0.5 if modulated else 1.0  # the DCNv2 mask starts at sigmoid(0)
    expected = (_levels() + 1).float() * mask
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), expected)
    torch.testing.assert_close(out.amin(dim=(1, 2, 3)), out.amax(dim=(1, 2, 3)))


def test_pooler_assigns_the_same_levels_as_detectron2s_roi_pooler():
    from detectron2.modeling.poolers import assign_boxes_to_levels

    d2 = ROIPooler(7, FPN_SCALES, sampling_ratio=0, pooler_type="ROIAlignV2")
    ours = DeformROIPooler(7, FPN_SCALES, CHANNELS)
    assert (ours.min_level, ours.max_level) == (d2.min_level, d2.max_level)
    assert (ours.canonical_box_size, ours.canonical_level) == (d2.canonical_box_size, d2.canonical_level)
    levels = assign_boxes_to_levels(_box_lists(), d2.min_level, d2.max_level, d2.canonical_box_size, d2.canonical_level)
    assert levels.tolist() == _levels().tolist()


def test_pooler_at_init_equals_plain_pooling_of_each_boxs_level_at_its_scale():
    x = _pyramid()
    pooler = DeformROIPooler(7, FPN_SCALES, CHANNELS, offset_fc_dims=(16,))
    out = pooler(x, _box_lists())
    rois, levels = _rois(), _levels()
    for i in range(len(rois)):
        level = int(levels[i])
        expected = deform_psroi_pool(x[level], rois[i : i + 1], None, FPN_SCALES[level], CHANNELS, 1, 7, 7, 4, no_trans=True)
        torch.testing.assert_close(out[i : i + 1], expected, msg=f"box {i} (level {level})")


@pytest.mark.parametrize("modulated", [False, True], ids=["dpool", "mdpool"])
def test_pooler_with_learned_offsets_pools_each_box_from_its_level_at_its_scale(modulated):
    x = _pyramid(seed=2)
    pooler = DeformROIPooler(7, FPN_SCALES, CHANNELS, modulated=modulated, offset_fc_dims=(16,))
    _randomize_offset_branches(pooler)
    out = pooler(x, _box_lists())
    rois, levels = _rois(), _levels()
    for level, scale in enumerate(FPN_SCALES):
        index = (levels == level).nonzero()[:, 0]
        assert len(index) >= 2
        torch.testing.assert_close(out[index], pooler.pool(x[level], rois[index], scale), msg=f"level {level}")
    plain = torch.stack([deform_psroi_pool(x[int(l)], rois[i : i + 1], None, FPN_SCALES[int(l)], CHANNELS, 1, 7, 7, 4, no_trans=True)[0] for i, l in enumerate(levels)])
    assert not torch.allclose(out, plain, atol=1e-3)  # the offsets (and mask) do change the result


def test_single_level_pooler_pools_every_box_at_that_scale():
    x = _pyramid(seed=3)[2]
    pooler = DeformROIPooler(14, (1 / 16,), CHANNELS, part_size=7, offset_fc_dims=())
    _randomize_offset_branches(pooler)
    torch.testing.assert_close(pooler([x], _box_lists()), pooler.pool(x, _rois(), 1 / 16))


def test_pooler_output_shape_and_empty_box_lists():
    pooler = DeformROIPooler(7, FPN_SCALES, CHANNELS, offset_fc_dims=(16,))
    assert pooler(_pyramid(), _box_lists()).shape == (len(ROUTED_BOXES), CHANNELS, 7, 7)
    empty = [Boxes(torch.zeros(0, 4)), Boxes(torch.zeros(0, 4))]
    assert pooler(_pyramid(), empty).shape == (0, CHANNELS, 7, 7)


def test_pooler_gradients_reach_features_of_every_level_and_the_offset_fc():
    x = [t.requires_grad_() for t in _pyramid(seed=4)]
    pooler = DeformROIPooler(7, FPN_SCALES, CHANNELS, modulated=True, offset_fc_dims=(16,))
    pooler(x, _box_lists()).square().sum().backward()
    assert all(t.grad.abs().sum() > 0 for t in x)
    assert pooler.pool.offset_fc[-1].weight.grad.abs().sum() > 0
    assert pooler.pool.mask_fc[-1].weight.grad.abs().sum() > 0


def test_pooler_rejects_a_wrong_number_of_feature_maps():
    pooler = DeformROIPooler(7, FPN_SCALES, CHANNELS)
    with pytest.raises(ValueError, match="feature maps"):
        pooler(_pyramid()[:3], _box_lists())


def test_pooler_rejects_scales_that_are_not_consecutive_powers_of_two():
    with pytest.raises(ValueError, match="powers"):
        DeformROIPooler(7, (1 / 4, 1 / 16), CHANNELS)


# --- ROI heads built from a config ------------------------------------------------------------

FPN_SHAPES = {f"p{i}": ShapeSpec(channels=CHANNELS, stride=2**i) for i in range(2, 6)}


def _fpn_cfg(pool, **dcn):
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.ROI_HEADS.NAME = "DeformStandardROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 16
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    cfg.MODEL.DCN.POOL = pool
    cfg.MODEL.DCN.POOL_OFFSET_FC_DIMS = [16, 16]
    for key, value in dcn.items():
        cfg.MODEL.DCN[key] = value
    return cfg


def _proposals(seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        xy = torch.rand(20, 2, generator=g) * 300
        wh = torch.rand(20, 2, generator=g) * 200 + 16
        p = Instances((IMAGE, IMAGE))
        p.proposal_boxes = Boxes(torch.cat([xy, xy + wh], 1))
        p.objectness_logits = torch.randn(20, generator=g)
        out.append(p)
    return out


def _targets():
    out = []
    for boxes, classes in (([[20.0, 30.0, 120.0, 140.0], [200.0, 200.0, 420.0, 380.0]], [0, 2]), ([[50.0, 60.0, 90.0, 100.0]], [1])):
        t = Instances((IMAGE, IMAGE))
        t.gt_boxes = Boxes(torch.tensor(boxes))
        t.gt_classes = torch.tensor(classes)
        out.append(t)
    return out


def _features(seed=0):
    return dict(zip(FPN_SHAPES, _pyramid(seed)))


def test_standard_heads_without_pool_keep_detectron2s_roi_pooler():
    heads = build_roi_heads(_fpn_cfg(""), FPN_SHAPES)
    assert type(heads) is DeformStandardROIHeads
    assert type(heads.box_pooler) is ROIPooler


@pytest.mark.parametrize("pool, pool_cls", [("dpool", DeformRoIPool), ("mdpool", ModulatedDeformRoIPool)])
def test_standard_heads_pool_with_the_configured_deformable_pooler(pool, pool_cls):
    cfg = _fpn_cfg(pool, POOL_TRANS_STD=0.2, POOL_SAMPLE_PER_PART=2)
    pooler = build_roi_heads(cfg, FPN_SHAPES).box_pooler
    assert isinstance(pooler, DeformROIPooler) and type(pooler.pool) is pool_cls
    assert pooler.scales == FPN_SCALES
    assert (pooler.output_size, pooler.pool.in_channels) == (7, CHANNELS)
    assert (pooler.pool.trans_std, pooler.pool.sample_per_part) == (0.2, 2)
    widths = [m.out_features for m in pooler.pool.offset_fc if hasattr(m, "out_features")]
    assert widths == [16, 16, 2 * 7 * 7]


def test_standard_heads_reject_an_unknown_pool():
    with pytest.raises(ValueError, match="MODEL.DCN.POOL"):
        build_roi_heads(_fpn_cfg("roialign"), FPN_SHAPES)


def _assert_same_detections(ours, theirs, features, proposals):
    """Both heads (eval mode) predict the same boxes and scores for the same input."""
    with torch.no_grad():
        a, _ = ours(None, features, proposals)
        b, _ = theirs(None, features, proposals)
    for x, y in zip(a, b):
        torch.testing.assert_close(x.pred_boxes.tensor, y.pred_boxes.tensor)
        torch.testing.assert_close(x.scores, y.scores)


def test_standard_heads_without_pool_equal_detectron2s_standard_roi_heads():
    cfg = _fpn_cfg("")
    ours = build_roi_heads(cfg, FPN_SHAPES).eval()
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    theirs = build_roi_heads(cfg, FPN_SHAPES).eval()
    assert type(theirs) is StandardROIHeads
    theirs.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_detections(ours, theirs, _features(), _proposals())


@pytest.mark.parametrize("pool", ["dpool", "mdpool"])
def test_standard_heads_with_deformable_pool_train_and_infer(pool):
    heads = build_roi_heads(_fpn_cfg(pool), FPN_SHAPES)
    with EventStorage():
        _, losses = heads(None, _features(), _proposals(), _targets())
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert heads.box_pooler.pool.offset_fc[-1].weight.grad.abs().sum() > 0
    heads.eval()
    with torch.no_grad():
        instances, _ = heads(None, _features(), _proposals())
    assert len(instances) == 2 and all(i.has("pred_boxes") for i in instances)


# --- C4 ---------------------------------------------------------------------------------------

C4_SHAPES = {"res4": ShapeSpec(channels=32, stride=16)}


def _c4_cfg(pool, deform_res5=False, last=-1):
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.ROI_HEADS.NAME = "DeformRes5ROIHeads"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 16
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 8  # res5: 32 -> 64 channels
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 2
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, False, False, deform_res5]
    cfg.MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE = [-1, -1, -1, last]
    cfg.MODEL.DCN.POOL = pool
    cfg.MODEL.DCN.POOL_PART_SIZE = 7
    cfg.MODEL.DCN.POOL_OFFSET_FC_DIMS = []
    return cfg


def _c4_features(seed=0):
    return {"res4": torch.randn(2, 32, IMAGE // 16, IMAGE // 16, generator=torch.Generator().manual_seed(seed))}


def test_res5_heads_pool_14x14_with_the_configured_deformable_pooler():
    heads = build_roi_heads(_c4_cfg("mdpool"), C4_SHAPES)
    assert type(heads) is DeformRes5ROIHeads
    pooler = heads.pooler
    assert isinstance(pooler, DeformROIPooler) and type(pooler.pool) is ModulatedDeformRoIPool
    assert (pooler.scales, pooler.output_size, pooler.pool.part_size) == ((1 / 16,), 14, 7)


@pytest.mark.parametrize("deform_res5, last, expected", [(False, -1, []), (True, -1, [0, 1, 2]), (True, 1, [2])])
def test_res5_heads_make_res5_deformable_as_configured(deform_res5, last, expected):
    heads = build_roi_heads(_c4_cfg("", deform_res5, last), C4_SHAPES)
    assert [i for i, b in enumerate(heads.res5) if isinstance(b, DeformBottleneck)] == expected


def test_res5_heads_without_deformable_options_equal_detectron2s_res5_roi_heads():
    cfg = _c4_cfg("")
    ours = build_roi_heads(cfg, C4_SHAPES).eval()
    cfg.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
    theirs = build_roi_heads(cfg, C4_SHAPES).eval()
    assert type(theirs) is Res5ROIHeads and type(ours.pooler) is ROIPooler
    theirs.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_detections(ours, theirs, _c4_features(), _proposals())


def test_res5_heads_with_dpool_and_deformable_res5_train():
    heads = build_roi_heads(_c4_cfg("dpool", deform_res5=True), C4_SHAPES)
    with EventStorage():
        _, losses = heads(None, _c4_features(), _proposals(), _targets())
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert heads.pooler.pool.offset_fc[-1].weight.grad.abs().sum() > 0
    assert heads.res5[0].conv2_offset.weight.grad.abs().sum() > 0
