"""tools/export_onnx.py: a whole deformable detector exported and checked in onnxruntime, the
dynamo exporter's refusal reported (no file), and argument errors that name the argument."""
import importlib.util
import os
import re

import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from tests.modeling.deformed_model import EXPORT_TEST_OPTS, deformed_random_model  # noqa: E402
from tests.modeling.synthetic import draw_images, tiny_cfg, tiny_model_opts  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "Demo", "faster_rcnn_dcnv2.yaml")
# The tiny widths of tests/modeling, plus the offset fc width tiny_cfg sets.
# The 20 best-scoring detections: a random-weight model also makes near-duplicate low-score
# boxes whose NMS outcome flips with rounding-level differences (the kernels differ from
# onnxruntime's, and per CPU instruction set, in the last bits).
OPTS = tiny_model_opts() + EXPORT_TEST_OPTS + ["MODEL.DCN.POOL_OFFSET_FC_DIMS", "[64]", "TEST.DETECTIONS_PER_IMAGE", "20"]


def _tool():
    spec = importlib.util.spec_from_file_location("export_onnx", os.path.join(ROOT, "tools", "export_onnx.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def weights_and_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_onnx")
    model = deformed_random_model(tiny_cfg(CONFIG, ["MODEL.DCN.POOL_OFFSET_FC_DIMS", "[64]"]), (128, 128))
    weights = str(root / "model.pth")
    torch.save({"model": model.state_dict()}, weights)
    images = []
    for im in draw_images(2, seed=5):
        images.append(str(root / f"{im.file_stem}.jpg"))
        Image.fromarray(im.pixels).save(images[-1])
    return weights, images


@pytest.mark.slow
def test_whole_detector_export_and_check(tmp_path, weights_and_images, capsys):
    weights, images = weights_and_images
    output = str(tmp_path / "detector.onnx")
    rc = _tool().main(["--config-file", CONFIG, "--weights", weights, "--output", output,
                       "--check", *images, "--max-diff", "0.05", "--opts", *OPTS])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert os.path.isfile(output) and not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
    assert "exported " + output in out and "whole detector (preprocessing, backbone, RPN, ROI heads, NMS)" in out
    assert "torchscript exporter" in out and "custom op domains: none" in out
    deform_convs = int(re.search(r"\((\d+) DeformConv\)", out).group(1))
    assert deform_convs == 13  # res3-res5 of the R-50: 4 + 6 + 3 blocks
    checks = re.findall(r"check .*: (\d+) detections in PyTorch, (\d+) in onnxruntime, (\d+) unpaired; "
                        r"max \|box diff\| (\S+) px, max \|score diff\| (\S+)", out)
    assert len(checks) == 2
    for n_torch, n_ort, unpaired, box, score in checks:
        assert int(n_torch) == int(n_ort) > 0 and int(unpaired) == 0
        assert float(box) < 0.05 and float(score) < 1e-3


@pytest.mark.slow
def test_dynamo_exporter_on_the_whole_detector_says_why_and_writes_nothing(tmp_path, weights_and_images, capsys):
    weights, _ = weights_and_images
    output = str(tmp_path / "detector.onnx")
    rc = _tool().main(["--config-file", CONFIG, "--weights", weights, "--output", output,
                       "--exporter", "dynamo", "--opts", *OPTS])
    err = capsys.readouterr().err
    assert rc == 1
    assert "cannot capture detectron2's detector" in err and "detectron2/" in err and "nothing was written" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("change,message", [
    ({"--config-file": "missing.yaml"}, "--config-file: no such file"),
    ({"--weights": "missing.pth"}, "--weights: no such file"),
    ({"--output": "/no/such/dir/model.onnx"}, "--output: directory"),
    ({"--opset": "18"}, "--opset must be >= 19"),
    ({"--check": "missing.jpg"}, "--check: no such image"),
    ({"--input-size": ["0", "64"]}, "--input-size: H and W must be positive"),
])
def test_bad_arguments_are_named(tmp_path, capsys, change, message):
    args = {"--config-file": CONFIG, "--weights": "", "--output": str(tmp_path / "m.onnx")}
    args.update(change)
    argv = []
    for key, value in args.items():
        argv += [key, *(value if isinstance(value, list) else [value])]
    with pytest.raises(SystemExit) as exc:
        _tool().main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
