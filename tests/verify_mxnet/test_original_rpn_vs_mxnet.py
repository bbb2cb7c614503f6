"""OriginalRPN with RoundedAnchorGenerator, MODEL.RPN.DROP_PARTIAL_CELLS and PROPOSAL_RULES
"original" against MXNet 1.9.1's contrib.Proposal (run in the MXNet venv) on the same RPN
outputs: the same proposals in the same order. Images whose sizes are not multiples of the
stride (partial cells), weights large enough that boxes move and get clipped."""
import numpy as np
import pytest
import torch

from tests.modeling.test_original_rpn import STRIDE, _cfg, _rpn, _run


@pytest.mark.parametrize("image_size,grid", [((200, 250), (13, 16)), ((180, 300), (12, 19)), ((96, 130), (6, 9))])
def test_proposals_match_mxnet_proposal(run_mxnet, image_size, grid):
    cfg = _cfg(drop=True, rules="original")
    ours, logits, deltas = _run(_rpn(cfg, seed=sum(image_size)), image_size, grid)
    # Our one objectness logit per anchor is fg - bg of the original's softmax pair.
    fg = torch.sigmoid(logits).numpy()
    mx = run_mxnet(
        "mxnet_proposal.py", cls_prob=np.concatenate([1 - fg, fg])[None].astype(np.float32),
        bbox_pred=deltas.numpy()[None], im_info=np.array([[image_size[0], image_size[1], 1.0]], np.float32),
        pre_nms=np.array(cfg.MODEL.RPN.PRE_NMS_TOPK_TEST), post_nms=np.array(cfg.MODEL.RPN.POST_NMS_TOPK_TEST),
        nms=np.array(cfg.MODEL.RPN.NMS_THRESH), scales=np.array([4.0, 8.0, 16.0, 32.0]),
        ratios=np.array([0.5, 1.0, 2.0]), stride=np.array(STRIDE))
    boxes = ours.proposal_boxes.tensor.clone()
    boxes[:, 2:] -= 1  # continuous -> the +1 convention
    # MXNet pads to POST_NMS_TOPK with repeats when fewer survive NMS; ours stops.
    theirs = mx["rois"][: len(boxes), 1:]
    assert len(boxes) == cfg.MODEL.RPN.POST_NMS_TOPK_TEST or np.unique(mx["rois"], axis=0).shape[0] == len(boxes)
    # float32 boxes of a few hundred pixels, computed in float64 (ours) vs float32 (MXNet): 1e-3 px.
    np.testing.assert_allclose(boxes.numpy(), theirs, rtol=0, atol=1e-3)
    np.testing.assert_allclose(torch.sigmoid(ours.objectness_logits).numpy(), mx["scores"][: len(boxes), 0],
                               rtol=1e-5, atol=1e-6)
