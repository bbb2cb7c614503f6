"""tools/train_net.py with a semantic-segmentation config (DeepLabV3, deformable res5, VOC 2012),
as a subprocess: it picks the DeepLab mapper, poly schedule and SemSegEvaluator from the config's
meta-architecture, reads detectron2-style $DETECTRON2_DATASETS/VOC2012 (palette label PNGs, 255 =
ignore) through dcn_det's voc_2012_sem_seg_* registration, trains and reports mIoU."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcn_det.data.shapes import SplitSpec, draw_image_and_labels
from tests.modeling.synthetic import tiny_model_opts

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "PascalVOC-SemanticSegmentation" / "deeplab_v3_R_103_os16_mg124_poly_30k_bs16_dconv_c5.yaml"


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    """$DETECTRON2_DATASETS with a VOC2012 folder of 6 generated images (shapes as VOC classes 1-7)."""
    root = tmp_path_factory.mktemp("detectron2_datasets")
    voc = root / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    palette = np.random.default_rng(0).integers(0, 256, size=768).astype(np.uint8).tolist()
    spec = SplitSpec(num_images=6, seed=31)
    names = []
    for i in range(6):
        image, _, labels = draw_image_and_labels(spec, i)
        labels[0, :] = 255  # VOC's "void" boundary label, ignored
        name = f"2007_{i:06d}"
        Image.fromarray(image[:, :, ::-1]).save(voc / "JPEGImages" / f"{name}.jpg")
        png = Image.fromarray(labels, mode="P")
        png.putpalette(palette)
        png.save(voc / "SegmentationClass" / f"{name}.png")
        names.append(name)
    (voc / "ImageSets/Segmentation/train.txt").write_text("\n".join(names[:4]) + "\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("\n".join(names[4:]) + "\n")
    return root


def test_train_net_trains_and_evaluates_deeplab_with_semseg_evaluator(datasets_root, tmp_path):
    opts = tiny_model_opts() + [
        "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32",
        "MODEL.SEM_SEG_HEAD.ASPP_CHANNELS", "32",
        "MODEL.SEM_SEG_HEAD.NORM", "BN",
        "INPUT.CROP.SIZE", "(64, 64)",
        "SOLVER.OPTIMIZER", "AdamW",
        "SOLVER.BASE_LR", "0.001",
        "SOLVER.IMS_PER_BATCH", "2",
        "SOLVER.MAX_ITER", "3",
        "SOLVER.WARMUP_ITERS", "1",
        "SOLVER.CHECKPOINT_PERIOD", "100",
        "OUTPUT_DIR", str(tmp_path / "output"),
    ]
    env = dict(os.environ, DETECTRON2_DATASETS=str(datasets_root), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", str(CONFIG), *opts],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "Evaluation results for voc_2012_sem_seg_val" in log
    assert "copypaste: mIoU,fwIoU,mACC,pACC" in log
    assert (tmp_path / "output" / "model_final.pth").is_file()
