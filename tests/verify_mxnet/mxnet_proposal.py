"""Runs under a Python with MXNet 1.9.1 (never imported by dcn_det or the test process):
``python mxnet_proposal.py IN.npz OUT.npz``. IN holds cls_prob [1, 2A, H, W] (background
block, then foreground), bbox_pred [1, 4A, H, W], im_info [1, 3] and the settings; OUT gets
the RoIs [post, 5] and scores of contrib.Proposal, MXNet's port of the original proposal
operator (the same steps as the authors' Python proposal layer)."""
import sys

import mxnet as mx
import numpy as np


def main(src: str, dst: str) -> None:
    a = dict(np.load(src))
    rois, scores = mx.nd.contrib.Proposal(
        cls_prob=mx.nd.array(a["cls_prob"]), bbox_pred=mx.nd.array(a["bbox_pred"]), im_info=mx.nd.array(a["im_info"]),
        rpn_pre_nms_top_n=int(a["pre_nms"]), rpn_post_nms_top_n=int(a["post_nms"]), threshold=float(a["nms"]),
        rpn_min_size=0, scales=tuple(float(s) for s in a["scales"]), ratios=tuple(float(r) for r in a["ratios"]),
        feature_stride=int(a["stride"]), output_score=True)
    np.savez(dst, rois=rois.asnumpy(), scores=scores.asnumpy())


if __name__ == "__main__":
    main(*sys.argv[1:3])
