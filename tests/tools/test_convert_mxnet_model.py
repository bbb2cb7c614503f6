"""tools/convert_mxnet_model.py: a hand-written .params file of a small R-FCN, converted and
loaded by detectron2's checkpointer; argument errors; DST never half-written or clobbered."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from dcn_det.engine import build_cfg
from tests.convert.ndarray_file import ndarray_file

ROOT = Path(__file__).resolve().parents[2]
TOOL = str(ROOT / "tools" / "convert_mxnet_model.py")
CONFIG = str(ROOT / "configs" / "Original" / "rfcn_dcn_coco.yaml")
SMALL = ["MODEL.RESNETS.DEPTH", "50", "MODEL.RESNETS.STEM_OUT_CHANNELS", "8", "MODEL.RESNETS.WIDTH_PER_GROUP", "8",
         "MODEL.RESNETS.RES2_OUT_CHANNELS", "32", "MODEL.RPN.CONV_DIMS", "[16]", "MODEL.RFCN.HIDDEN_DIM", "16",
         "MODEL.ROI_HEADS.NUM_CLASSES", "2"]


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, cwd=str(ROOT), timeout=600)


def _original_names(state):
    """The authors' names and shapes for a model's state dict (the inverse of the mapping,
    written out for this test from their naming scheme)."""
    out = {}
    rng = np.random.default_rng(0)
    for key, value in state.items():
        parts = key.split(".")
        shape = tuple(value.shape)
        if parts[0] == "backbone":
            field = {"weight": "weight", "bias": "bias"}
            bn = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_var"}
            if parts[1] == "stem":
                name = "bn_conv1_" + bn[parts[-1]] if parts[3] == "norm" else "conv1_weight"
            else:
                stage, block, module = parts[1][3:], int(parts[2]), parts[3]
                letter = chr(ord("a") + block)
                branch = {"shortcut": "branch1", "conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c",
                          "conv2_offset": "branch2b_offset"}[module]
                if parts[4] == "norm":
                    name = f"bn{stage}{letter}_{branch}_{bn[parts[5]]}"
                else:
                    name = f"res{stage}{letter}_{branch}_{field[parts[4]]}"
        elif parts[0] == "proposal_generator":
            layer = {"conv": "rpn_conv_3x3", "objectness_logits": "rpn_cls_score", "anchor_deltas": "rpn_bbox_pred"}
            name = f"{layer[parts[2]]}_{parts[3]}"
            if parts[2] == "objectness_logits":
                shape = (2 * shape[0],) + shape[1:]
        else:
            layer = {"conv_new": "conv_new_1", "rfcn_cls": "rfcn_cls", "rfcn_bbox": "rfcn_bbox",
                     "cls_pool": "rfcn_cls_offset_t", "bbox_pool": "rfcn_bbox_offset_t"}[parts[1]]
            name = f"{layer}_{parts[-1]}"
            if layer == "rfcn_bbox":
                shape = (2 * shape[0],) + shape[1:]
        prefix = "aux" if "moving" in name else "arg"
        value = rng.uniform(0.5, 2.0, shape) if "moving_var" in name else 0.1 * rng.standard_normal(shape)
        out[f"{prefix}:{name}"] = value.astype(np.float32)
    return out


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    model = build_model(build_cfg(CONFIG, SMALL + ["MODEL.DEVICE", "cpu"]))
    path = tmp_path_factory.mktemp("mx") / "small-0000.params"
    named = _original_names(model.state_dict())
    path.write_bytes(ndarray_file(named))
    return path, named


def test_converts_and_loads(params_file, tmp_path):
    src, named = params_file
    dst = tmp_path / "small.pth"
    result = _run("--config-file", CONFIG, str(src), str(dst), "--opts", *SMALL)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    model = build_model(build_cfg(CONFIG, SMALL + ["MODEL.DEVICE", "cpu"]))
    DetectionCheckpointer(model).load(str(dst))
    loaded = model.state_dict()
    np.testing.assert_array_equal(loaded["backbone.res5.2.conv2_offset.weight"].numpy(),
                                  named["arg:res5c_branch2b_offset_weight"])
    np.testing.assert_array_equal(loaded["backbone.res3.0.shortcut.norm.running_var"].numpy(),
                                  named["aux:bn3a_branch1_moving_var"])
    assert not list(tmp_path.glob(".tmp-*")), "temporary file left behind"


def test_refuses_a_file_for_another_network(params_file, tmp_path):
    src, _ = params_file
    dst = tmp_path / "small.pth"
    result = _run("--config-file", CONFIG, str(src), str(dst), "--opts", *SMALL, "MODEL.ROI_HEADS.NUM_CLASSES", "5")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("convert_mxnet_model:")]
    assert len(errors) == 1 and "becomes" in errors[0] and "does the config match the network?" in errors[0], \
        result.stderr
    assert not dst.exists()


def test_argument_errors(params_file, tmp_path):
    src, _ = params_file
    missing = _run("--config-file", CONFIG, str(tmp_path / "none.params"), str(tmp_path / "x.pth"))
    assert missing.returncode == 2 and "SRC: no such file" in missing.stderr
    dst = tmp_path / "exists.pth"
    dst.write_bytes(b"keep me")
    exists = _run("--config-file", CONFIG, str(src), str(dst))
    assert exists.returncode == 2 and "--overwrite" in exists.stderr
    assert dst.read_bytes() == b"keep me"
    nodir = _run("--config-file", CONFIG, str(src), str(tmp_path / "no" / "x.pth"))
    assert nodir.returncode == 2 and "does not exist" in nodir.stderr


def test_converted_model_evaluates_with_train_net(params_file, tmp_path, datasets_root):
    """README's third command: tools/train_net.py --eval-only on the converted checkpoint
    (here on a tiny coco_2017_val laid out like the real one; the small model has 2 classes)."""
    from .train_net_helpers import run

    src, _ = params_file
    dst = tmp_path / "small.pth"
    assert _run("--config-file", CONFIG, str(src), str(dst), "--opts", *SMALL).returncode == 0
    result = run(["--config-file", CONFIG, "--eval-only", "MODEL.WEIGHTS", dst, "OUTPUT_DIR", tmp_path / "out",
                  "DATASETS.TEST", "('coco_2017_val',)", "MODEL.DEVICE", "cpu", *SMALL], datasets_root, timeout=600)
    assert result.returncode == 0, result.log[-3000:]
    assert "copypaste: Task: bbox" in result.log and "No predictions" not in result.log, result.log[-3000:]
    assert (tmp_path / "out" / "inference" / "coco_2017_val" / "coco_instances_results.json").exists()
