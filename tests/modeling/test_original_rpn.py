"""RoundedAnchorGenerator and OriginalRPN (dcn_det.modeling.anchor_generator,
proposal_generator): the original code's anchors and test-time proposals, against an
independent numpy reference of the original algorithm (original_reference.py) and
against detectron2's own RPN where the rules are off."""
import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_proposal_generator
from detectron2.modeling.anchor_generator import build_anchor_generator
from detectron2.structures import ImageList

from dcn_det import add_dcn_config
from dcn_det.config import ConfigError, check_cfg
from dcn_det.modeling.anchor_generator import rounded_cell_anchors
from dcn_det.modeling.plus_one_boxes import clip_plus_one
from dcn_det.modeling.proposal_generator import whole_cell_mask

from . import original_reference as ref

STRIDE = 16
SHAPES = {"res4": ShapeSpec(channels=16, stride=STRIDE)}

# py-faster-rcnn's anchors for base 16, ratios (0.5, 1, 2), scales (8, 16, 32), as published
# with that code (+1 convention, ratio-major).
PUBLISHED_ANCHORS = [
    [-84, -40, 99, 55], [-176, -88, 191, 103], [-360, -184, 375, 199],
    [-56, -56, 71, 71], [-120, -120, 135, 135], [-248, -248, 263, 263],
    [-36, -80, 51, 95], [-80, -168, 95, 183], [-168, -344, 183, 359],
]


def _cfg(drop=False, rules="detectron2", name="OriginalRPN", anchors="RoundedAnchorGenerator"):
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = name
    cfg.MODEL.ANCHOR_GENERATOR.NAME = anchors
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[64, 128, 256, 512]]
    cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
    cfg.MODEL.ANCHOR_GENERATOR.OFFSET = 0.0
    cfg.MODEL.RPN.IN_FEATURES = ["res4"]
    cfg.MODEL.RPN.CONV_DIMS = [8]
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 400
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 120
    cfg.MODEL.RPN.DROP_PARTIAL_CELLS = drop
    cfg.MODEL.RPN.PROPOSAL_RULES = rules
    return cfg


def _rpn(cfg, seed=0):
    torch.manual_seed(seed)
    rpn = build_proposal_generator(cfg, SHAPES).eval()
    # Large enough weights that deltas move boxes by many pixels and scores spread out.
    with torch.no_grad():
        for p in rpn.rpn_head.parameters():
            p.normal_(0.0, 0.15)
    return rpn


def _run(rpn, image_size, grid, seed=1):
    torch.manual_seed(seed)
    feature = torch.randn(1, 16, *grid)
    images = ImageList(torch.zeros(1, 3, grid[0] * STRIDE, grid[1] * STRIDE), [image_size])
    with torch.no_grad():
        proposals, _ = rpn(images, {"res4": feature})
        logits, deltas = rpn.rpn_head([feature])
    return proposals[0], logits[0][0], deltas[0][0]


def test_cell_anchors_are_the_published_ones():
    sizes = [8 * STRIDE, 16 * STRIDE, 32 * STRIDE]
    ours = rounded_cell_anchors(STRIDE, sizes, [0.5, 1, 2]).numpy()
    published = np.array(PUBLISHED_ANCHORS, dtype=np.float64)
    published[:, 2:] += 1  # continuous boxes: x2, y2 one more than the last pixel inside
    np.testing.assert_array_equal(ours, published)
    np.testing.assert_array_equal(ref.generate_anchors(16, (0.5, 1, 2), (8, 16, 32)), np.array(PUBLISHED_ANCHORS))


@pytest.mark.parametrize("stride,scales", [(16, (4, 8, 16, 32)), (8, (2, 3)), (32, (1.5, 7))])
def test_cell_anchors_match_the_reference_generator(stride, scales):
    ratios = (0.5, 1.0, 2.0, 1 / 3)
    ours = rounded_cell_anchors(stride, [s * stride for s in scales], ratios).numpy()
    theirs = ref.generate_anchors(stride, ratios, scales)
    theirs[:, 2:] += 1
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_generator_shifts_cells_in_row_column_anchor_order():
    cfg = _cfg()
    generator = build_anchor_generator(cfg, [SHAPES["res4"]])
    assert generator.num_anchors == [12] and generator.num_cell_anchors == [12]
    (anchors,) = generator([torch.zeros(1, 16, 3, 5)])
    cell = rounded_cell_anchors(STRIDE, [64, 128, 256, 512], [0.5, 1, 2]).float()
    boxes = anchors.tensor.view(3, 5, 12, 4)
    for i, j in [(0, 0), (2, 4), (1, 3)]:
        torch.testing.assert_close(boxes[i, j], cell + torch.tensor([j, i, j, i]) * STRIDE, rtol=0, atol=0)
    assert not any(k.startswith("anchor_generator") for k in build_proposal_generator(cfg, SHAPES).state_dict())


def _anchors(grid, sizes=(64, 128, 256, 512)):
    cfg = _cfg()
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [list(sizes)]
    (anchors,) = build_anchor_generator(cfg, [SHAPES["res4"]])([torch.zeros(1, 16, *grid)])
    return anchors.tensor


def test_whole_cell_mask():
    anchors = _anchors((3, 4), sizes=(32, 64))  # 2 sizes x 3 ratios = 6 anchors per cell
    mask = whole_cell_mask(anchors, 6, 16, (40, 63)).view(3, 4, 6)
    # 40 // 16 = 2 whole rows, 63 // 16 = 3 whole columns.
    expected = torch.zeros(3, 4, dtype=torch.bool)
    expected[:2, :3] = True
    assert torch.equal(mask, expected[:, :, None].expand(3, 4, 6))


def test_clip_plus_one():
    boxes = torch.tensor([[-5.0, -3.0, 0.5, 0.2], [90.0, 45.0, 130.0, 70.0], [10.0, 5.0, 20.0, 30.0]])
    clipped = clip_plus_one(boxes, (50, 100))
    expected = torch.tensor([[0.0, 0.0, 1.0, 1.0], [90.0, 45.0, 100.0, 50.0], [10.0, 5.0, 20.0, 30.0]])
    torch.testing.assert_close(clipped, expected, rtol=0, atol=0)


@pytest.mark.parametrize("image_size,grid", [((200, 250), (13, 16)), ((192, 224), (12, 14)), ((180, 300), (12, 19))])
def test_original_rules_match_the_reference_proposal_operator(image_size, grid):
    cfg = _cfg(drop=True, rules="original")
    rpn = _rpn(cfg)
    result, logits, deltas = _run(rpn, image_size, grid)
    anchors = ref.generate_anchors(16, (0.5, 1, 2), (4, 8, 16, 32))
    expected = ref.proposals(torch.sigmoid(logits).numpy(), deltas.numpy().astype(np.float32), image_size, STRIDE,
                             anchors, cfg.MODEL.RPN.PRE_NMS_TOPK_TEST, cfg.MODEL.RPN.POST_NMS_TOPK_TEST,
                             cfg.MODEL.RPN.NMS_THRESH)
    ours = result.proposal_boxes.tensor.clone()
    ours[:, 2:] -= 1  # back to the +1 convention
    assert ours.shape == expected.shape, (ours.shape, expected.shape)
    # Same boxes in the same order; float32 coordinates of a few hundred pixels: 1e-3 px.
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-3)
    # The partial cells' anchors are really gone, and degenerate (clipped flat) boxes stay.
    whole = (image_size[0] // STRIDE) * (image_size[1] // STRIDE) * 12
    assert whole < grid[0] * grid[1] * 12 or image_size[0] % STRIDE == 0 == image_size[1] % STRIDE


def test_detectron2_rules_differ_from_the_reference():
    # So that the reference test above can fail: detectron2's clipping and decoding give other
    # proposals on these inputs.
    image_size, grid = (200, 250), (13, 16)
    result, logits, deltas = _run(_rpn(_cfg(drop=True, rules="detectron2")), image_size, grid)
    expected = ref.proposals(torch.sigmoid(logits).numpy(), deltas.numpy(), image_size, STRIDE,
                             ref.generate_anchors(16, (0.5, 1, 2), (4, 8, 16, 32)), 400, 120, 0.7)
    ours = result.proposal_boxes.tensor.clone()
    ours[:, 2:] -= 1
    n = min(len(ours), len(expected))
    assert len(ours) != len(expected) or np.abs(ours[:n].numpy() - expected[:n]).max() > 1.0


def test_without_drop_the_partial_cells_do_propose():
    image_size, grid = (200, 250), (13, 16)
    cfg = _cfg(drop=True, rules="original")
    dropped, _, _ = _run(_rpn(cfg), image_size, grid)
    kept, logits, _ = _run(_rpn(_cfg(drop=False, rules="original")), image_size, grid)
    mask = whole_cell_mask(_anchors(grid), 12, STRIDE, image_size)
    flat = logits.permute(1, 2, 0).reshape(-1)  # [A, H, W] -> the RPN's (row, column, anchor) order
    top = flat.topk(cfg.MODEL.RPN.PRE_NMS_TOPK_TEST).indices
    assert (~mask[top]).any(), "test data: some partial-cell anchor must rank among the pre-NMS top k"
    assert not torch.equal(dropped.proposal_boxes.tensor, kept.proposal_boxes.tensor)


def test_rules_off_is_detectron2s_rpn():
    image_size, grid = (200, 250), (13, 16)
    ours, _, _ = _run(_rpn(_cfg()), image_size, grid)
    theirs, _, _ = _run(_rpn(_cfg(name="RPN")), image_size, grid)
    assert torch.equal(ours.proposal_boxes.tensor, theirs.proposal_boxes.tensor)
    assert torch.equal(ours.objectness_logits, theirs.objectness_logits)


def test_drop_with_detectron2_rules_equals_detectron2_on_whole_cells():
    # An image whose size is a multiple of the stride has no partial cells: same as detectron2.
    image_size, grid = (192, 224), (12, 14)
    ours, _, _ = _run(_rpn(_cfg(drop=True)), image_size, grid)
    theirs, _, _ = _run(_rpn(_cfg(name="RPN")), image_size, grid)
    assert torch.equal(ours.proposal_boxes.tensor, theirs.proposal_boxes.tensor)


def test_training_still_computes_detectron2_losses():
    from detectron2.structures import Boxes, Instances
    from detectron2.utils.events import EventStorage

    rpn = _rpn(_cfg(drop=True, rules="original")).train()
    feature = torch.randn(1, 16, 13, 16)
    images = ImageList(torch.zeros(1, 3, 208, 256), [(200, 250)])
    gt = Instances((200, 250), gt_boxes=Boxes(torch.tensor([[20.0, 30.0, 120.0, 150.0]])))
    with EventStorage():
        proposals, losses = rpn(images, {"res4": feature}, [gt])
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc"} and all(torch.isfinite(v) for v in losses.values())
    assert len(proposals[0]) > 0


def test_config_checks():
    check_cfg(_cfg(drop=True, rules="original"))
    with pytest.raises(ConfigError, match="PROPOSAL_RULES must be"):
        check_cfg(_cfg(rules="mxnet"))
    with pytest.raises(ConfigError, match="OriginalRPN"):
        check_cfg(_cfg(drop=True, name="RPN"))
