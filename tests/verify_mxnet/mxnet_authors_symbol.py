"""Runs under a Python with MXNet 1.9.1 (never imported by dcn_det or the test process):
``python mxnet_authors_symbol.py IN.npz OUT.npz``.

Builds the authors' OWN test network (their symbol code from a checkout of
msracver/Deformable-ConvNets, given as IN's ``repo``; Python 2 code, loaded under Python 3
by converting a temporary copy with lib2to3, which changes syntax, not logic) at full width
with their experiment yaml, random weights (mxnet_rcnn.random_params: the same scheme as the
CI networks) saved to IN's ``params_path``, runs it on IN's ``data`` / ``im_info`` and saves
every stage to OUT under the names mxnet_rcnn.py uses. Their Python proposal layer needs
their compiled GPU NMS, so the network is built with their own switch
``TEST.CXX_PROPOSAL = True`` (MXNet's contrib.Proposal, the same algorithm:
tests/verify_mxnet/test_original_rpn_vs_mxnet.py). Used by full_width_vs_authors.py; nothing
of theirs is copied into this project.

IN: data, im_info, repo (folder), family ("rfcn" / "faster_rcnn"), symbol (module name, e.g.
resnet_v1_101_rfcn_dcn), yaml (path under repo), seed, params_path.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import types

import mxnet as mx
import numpy as np

from mxnet_rcnn import random_params  # noqa: E402  (beside this script: run as a script, its folder is on the path)

# Their internal layer names -> the stage names of mxnet_rcnn.py.
STAGES = {
    "rfcn": {"res4b22_relu_output": "res4", "res5c_relu_output": "res5", "rpn_cls_prob_reshape_output": "rpn_prob",
             "rpn_bbox_pred_output": "rpn_bbox", "rois_output": "rois", "psroipooled_cls_rois_output": "pooled",
             "cls_prob_reshape_output": "cls_prob", "bbox_pred_reshape_output": "bbox_pred"},
    "faster_rcnn": {"res4b22_relu_output": "res4", "res5c_relu_output": "res5",
                    "rpn_cls_prob_reshape_output": "rpn_prob", "rpn_bbox_pred_output": "rpn_bbox",
                    "rois_output": "rois", "deformable_roi_pool_output": "pooled", "roi_pool_output": "pooled",
                    "cls_prob_reshape_output": "cls_prob", "bbox_pred_reshape_output": "bbox_pred"},
}


def load_their_code(repo: str, family: str):
    """A Python 3 copy of their family folder and lib/ on sys.path; returns (config, update_config)."""
    work = tempfile.mkdtemp(prefix="authors-py3-")
    for folder in (family, "lib"):
        shutil.copytree(os.path.join(repo, folder), os.path.join(work, folder))
    subprocess.run([sys.executable, "-m", "lib2to3", "-w", "-n", "-j", "4",
                    os.path.join(work, family), os.path.join(work, "lib")], check=True, capture_output=True)
    for path in (os.path.join(work, family), os.path.join(work, "lib")):
        sys.path.insert(0, path)
    # Their compiled extensions (Cython / CUDA NMS, box overlaps) are only reached by the Python
    # proposal layer, which CXX_PROPOSAL replaces, and by training: stand-ins let the modules import.
    # OpenCV and PIL likewise serve only their image loading (the image comes in preprocessed).
    for name in ("cpu_nms", "gpu_nms", "nms.cpu_nms", "nms.gpu_nms", "cv2", "PIL", "PIL.Image"):
        stub = types.ModuleType(name)
        stub.__getattr__ = lambda attribute: None  # any name they read at import (cv2.INTER_LINEAR, ...)
        sys.modules[name] = stub
    import bbox as their_bbox  # lib/bbox: its compiled bbox_overlaps_cython serves training only

    their_bbox.bbox_overlaps_cython = None
    import yaml

    if "Loader" not in yaml.load.__code__.co_varnames[:1]:
        load = yaml.load
        yaml.load = lambda stream, Loader=yaml.SafeLoader: load(stream, Loader=Loader)  # PyYAML 6 needs a Loader
    from config.config import config, update_config

    return config, update_config


def main(src: str, dst: str) -> None:
    a = dict(np.load(src))
    repo, family = str(a["repo"]), str(a["family"])
    config, update_config = load_their_code(repo, family)
    update_config(os.path.join(repo, str(a["yaml"])))
    config.TEST.CXX_PROPOSAL = True
    module = __import__(f"symbols.{a['symbol']}", fromlist=[str(a["symbol"])])
    network = getattr(module, str(a["symbol"]))()
    test_symbol = network.get_symbol(config, is_train=False)
    internals = test_symbol.get_internals()
    # By position: their test symbol names two reshapes "bbox_pred_reshape"; the last one wins.
    last = {n: i for i, n in enumerate(internals.list_outputs()) if n in STAGES[family]}
    names = list(last)
    group = mx.sym.Group([internals[last[n]] for n in names])
    shapes = dict(data=a["data"].shape, im_info=a["im_info"].shape)
    args, aux = random_params(group, shapes, int(a["seed"]), input_scale=float(a["data"].std()))
    mx.nd.save(str(a["params_path"]), {**{f"arg:{k}": mx.nd.array(v) for k, v in args.items()},
                                       **{f"aux:{k}": mx.nd.array(v) for k, v in aux.items()}})
    feed = {k: mx.nd.array(v) for k, v in args.items()}
    feed.update(data=mx.nd.array(a["data"]), im_info=mx.nd.array(a["im_info"]))
    executor = group.bind(mx.cpu(), feed, aux_states={k: mx.nd.array(v) for k, v in aux.items()}, grad_req="null")
    outputs = dict(zip(names, (o.asnumpy() for o in executor.forward(is_train=False))))
    result = {STAGES[family][n]: v for n, v in outputs.items()}
    result["cls_prob"] = result["cls_prob"].reshape(-1, result["cls_prob"].shape[-1])
    result["bbox_pred"] = result["bbox_pred"].reshape(-1, result["bbox_pred"].shape[-1])
    np.savez(dst, **result)


if __name__ == "__main__":
    main(*sys.argv[1:3])
