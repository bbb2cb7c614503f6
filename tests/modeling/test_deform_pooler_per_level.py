"""DeformROIPooler(offset_per_level=True) / MODEL.DCN.POOL_OFFSET_PER_LEVEL: each FPN level pools
with its own offset branch. Checked box by box against that level's pooling module (the level
from detectron2's assignment rule), and against the shared-branch pooler when every level
carries the same weights."""
import pytest
import torch
from detectron2.modeling.poolers import assign_boxes_to_levels
from detectron2.structures import Boxes

from dcn_det.modeling import DeformROIPooler

SCALES = (1 / 4, 1 / 8, 1 / 16, 1 / 32)


def _inputs(seed):
    g = torch.Generator().manual_seed(seed)
    features = [torch.randn(2, 8, 512 // s, 512 // s, generator=g) for s in (4, 8, 16, 32)]
    # Boxes from 16 to 500 px: every level gets some (canonical 224 at level 4, 448 at 5).
    xy = torch.rand(12, 2, generator=g) * 80
    wh = torch.cat([torch.tensor([16.0, 60, 150, 300, 500, 30]), torch.rand(6, generator=g) * 400 + 16])[:, None]
    boxes = torch.cat([xy, xy + wh.expand(-1, 2) * torch.tensor([1.0, 0.9])], 1)
    return features, [Boxes(boxes[:6]), Boxes(boxes[6:])]


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.mark.parametrize("modulated", [False, True])
def test_each_level_pools_with_its_own_offsets(modulated):
    features, boxes = _inputs(0)
    pooler = DeformROIPooler(7, SCALES, 8, modulated=modulated, offset_fc_dims=[16], offset_per_level=True)
    assert len(pooler.level_pools) == 4 and not hasattr(pooler, "pool")
    for i, pool in enumerate(pooler.level_pools):
        _randomise(pool, 10 + i)
    got = pooler(features, boxes)
    levels = assign_boxes_to_levels(boxes, 2, 5, 224, 4)
    assert set(levels.tolist()) == {0, 1, 2, 3}
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b.tensor], 1) for i, b in enumerate(boxes)])
    for r, level in enumerate(levels.tolist()):
        want = pooler.level_pools[level](features[level], rois[r : r + 1], SCALES[level])
        torch.testing.assert_close(got[r : r + 1], want)


def test_same_weights_on_every_level_is_the_shared_pooler():
    features, boxes = _inputs(1)
    shared = DeformROIPooler(7, SCALES, 8, offset_fc_dims=[16])
    _randomise(shared, 3)
    per_level = DeformROIPooler(7, SCALES, 8, offset_fc_dims=[16], offset_per_level=True)
    for pool in per_level.level_pools:
        pool.load_state_dict(shared.pool.state_dict())
    torch.testing.assert_close(per_level(features, boxes), shared(features, boxes))
    _randomise(per_level.level_pools[2], 4)  # one level's own offsets: its boxes move
    assert not torch.allclose(per_level(features, boxes), shared(features, boxes))


def test_config_key_builds_it():
    from detectron2.config import get_cfg

    from dcn_det import add_dcn_config
    from dcn_det.modeling.roi_heads import build_deform_roi_pooler

    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.DCN.POOL = "dpool"
    cfg.MODEL.DCN.POOL_OFFSET_PER_LEVEL = True
    pooler = build_deform_roi_pooler(cfg, 7, SCALES, 256)
    assert pooler.offset_per_level and len(pooler.level_pools) == 4
