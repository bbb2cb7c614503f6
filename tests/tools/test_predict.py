"""tools/predict.py on generated pictures: one drawn picture per input and predictions.json
for each model family (random-initialised weights saved by the test, threshold 0 so every
family returns something), --show-sampling, video, and one-line errors with nothing written."""
import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SMALL = ["INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "160"]


def _tool():
    spec = importlib.util.spec_from_file_location("predict_tool", ROOT / "tools" / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pictures(folder: Path, count: int = 2):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = np.full((128, 160, 3), 200, np.uint8)
        cv2.rectangle(image, (20 + 5 * i, 30), (80, 90), (0, 0, 255), -1)
        cv2.circle(image, (120, 60), 25, (255, 0, 0), -1)
        cv2.imwrite(str(folder / f"picture{i}.png"), image)
    return folder


def _weights(config: Path, tmp_path: Path, opts=()):
    import dcn_det
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from dcn_det.engine import build_cfg

    dcn_det.register()
    model = build_model(build_cfg(str(config), ["MODEL.DEVICE", "cpu", *opts]))
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save(config.stem)
    return str(tmp_path / f"{config.stem}.pth")


FAMILIES = {  # config, expected output kind, --show-sampling
    "faster_rcnn": ("Demo/faster_rcnn_dcnv2.yaml", "boxes", True),
    "rfcn": ("Demo/rfcn_dcnv2.yaml", "boxes", False),
    "mask_rcnn": ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml", "masks", True),
    "retinanet": ("COCO-Detection/retinanet_R_50_FPN_dconv_c3-c5_1x.yaml", "boxes", False),
    "deeplab": ("Cityscapes-SemanticSegmentation/deeplab_v3_R_103_os16_mg124_poly_90k_bs16_dconv_c5.yaml", "sem_seg", True),
}
# DeepLabV3's image pooling has a fixed kernel (the training crop / 16): crops of the test size.
EXTRA_OPTS = {"deeplab": ["INPUT.CROP.SIZE", "(128, 160)"]}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_writes_pictures_and_predictions(family, tmp_path, capsys):
    config, kind, sampling = FAMILIES[family]
    weights = _weights(CONFIGS / config, tmp_path)
    inputs = _pictures(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["--config-file", str(CONFIGS / config), "--weights", weights, "--input", str(inputs),
            "--output", str(out), "--confidence-threshold", "0"]
    argv += ["--show-sampling"] * sampling + ["--opts", *SMALL, *EXTRA_OPTS.get(family, [])]
    assert _tool().main(argv) == 0, capsys.readouterr().err
    for i in range(2):
        drawn = cv2.imread(str(out / f"picture{i}.png"))
        assert drawn is not None and drawn.shape == (128, 160, 3)
        original = cv2.imread(str(inputs / f"picture{i}.png"))
        assert np.abs(drawn.astype(int) - original).mean() > 1  # something was drawn on it
    rows = json.loads((out / "predictions.json").read_text())
    assert {r["file_name"] for r in rows} == {"picture0.png", "picture1.png"}
    if kind == "sem_seg":
        labels = cv2.imread(str(out / "picture0_sem_seg.png"), cv2.IMREAD_UNCHANGED)
        assert labels.shape == (128, 160) and labels.max() < 19
        return
    for r in rows:
        x, y, w, h = r["bbox"]
        assert w >= 0 and h >= 0 and 0 <= r["score"] <= 1 and isinstance(r["category_name"], str)
    if kind == "masks":
        import pycocotools.mask as mask_util

        decoded = mask_util.decode(rows[0]["segmentation"])
        assert decoded.shape == (128, 160)
    assert not [p for p in os.listdir(out) if p.startswith(".predict-")]  # no staging left


def test_show_sampling_draws_on_the_picture(tmp_path):
    config = CONFIGS / "Demo/faster_rcnn_dcnv2.yaml"
    weights = _weights(config, tmp_path)
    inputs = _pictures(tmp_path / "in", 1)
    common = ["--config-file", str(config), "--weights", weights, "--input", str(inputs), "--confidence-threshold", "0"]
    tool = _tool()
    assert tool.main(common + ["--output", str(tmp_path / "plain")]) == 0
    assert tool.main(common + ["--output", str(tmp_path / "sampling"), "--show-sampling"]) == 0
    a = cv2.imread(str(tmp_path / "plain/picture0.png")).astype(int)
    b = cv2.imread(str(tmp_path / "sampling/picture0.png")).astype(int)
    assert (np.abs(a - b).sum(axis=2) > 0).sum() > 50  # the sampling dots and crosses


def test_video_is_read_and_written_frame_by_frame(tmp_path):
    config = CONFIGS / "Demo/faster_rcnn_dcnv2.yaml"
    weights = _weights(config, tmp_path)
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (160, 128))
    for i in range(3):
        writer.write(np.full((128, 160, 3), 60 * i, np.uint8))
    writer.release()
    out = tmp_path / "out"
    assert _tool().main(["--config-file", str(config), "--weights", weights, "--input", str(video),
                         "--output", str(out), "--confidence-threshold", "0"]) == 0
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    assert {r["frame"] for r in json.loads((out / "predictions.json").read_text())} <= {0, 1, 2}


def _fails(tool, argv, capsys, message):
    assert tool.main(argv) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("predict:")]  # progress bar
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_bad_input_is_one_error_line_and_nothing_is_written(tmp_path, capsys):
    config = CONFIGS / "Demo/faster_rcnn_dcnv2.yaml"
    weights = _weights(config, tmp_path)
    inputs = _pictures(tmp_path / "in")
    out = tmp_path / "out"
    tool = _tool()
    base = ["--config-file", str(config), "--output", str(out)]
    _fails(tool, base + ["--weights", weights, "--input", str(tmp_path / "missing.png")], capsys, "--input")
    (inputs / "zz_broken.png").write_bytes(b"not a picture")
    _fails(tool, base + ["--weights", weights, "--input", str(inputs)], capsys, "not a readable image")
    assert not out.exists()  # the two good pictures before the broken one were not kept either
    (inputs / "zz_broken.png").unlink()
    _fails(tool, base + ["--weights", str(tmp_path / "none.pth"), "--input", str(inputs)], capsys, "--weights")
    other = _weights(CONFIGS / "Demo/rfcn_dcnv2.yaml", tmp_path)
    _fails(tool, base + ["--weights", other, "--input", str(inputs)], capsys, "does not fit the config")
    plain = CONFIGS / "Demo/faster_rcnn_plain.yaml"
    _fails(tool, ["--config-file", str(plain), "--weights", _weights(plain, tmp_path), "--input", str(inputs),
                  "--output", str(out), "--show-sampling"], capsys, "--show-sampling")
    _fails(tool, ["--config-file", str(config), "--weights", weights, "--input", str(inputs),
                  "--output", str(inputs)], capsys, "write over the input")
    assert not out.exists() and sorted(os.listdir(inputs)) == ["picture0.png", "picture1.png"]


def test_lazyconfig_model_is_predicted_too(tmp_path, capsys):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import LazyConfig, instantiate

    config = tmp_path / "retinanet.py"
    config.write_text("from detectron2.model_zoo import get_config\n\nmodel = get_config('common/models/retinanet.py').model\n"
                      "model.num_classes = 3\nmodel.backbone.bottom_up.stem.norm = 'BN'\n"
                      "model.backbone.bottom_up.stages.norm = 'BN'\n")
    model = instantiate(LazyConfig.load(str(config)).model)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("lazy")
    out = tmp_path / "out"
    assert _tool().main(["--config-file", str(config), "--weights", str(tmp_path / "lazy.pth"), "--input",
                         str(_pictures(tmp_path / "in", 1)), "--output", str(out), "--confidence-threshold", "0"]) == 0, \
        capsys.readouterr().err
    assert (out / "picture0.png").exists() and json.loads((out / "predictions.json").read_text())
