"""tools/train_net.py end to end, as a subprocess: train with checkpoints, --resume,
--eval-only, and the error for a missing data set.

The data set is detectron2's built-in ``coco_2017_val``, read from a $DETECTRON2_DATASETS laid
out like the real one (coco/annotations/instances_val2017.json, coco/val2017/*.jpg) with a few
generated images that use COCO's own category ids."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

from tests.modeling.synthetic import draw_images, tiny_model_opts, write_coco

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TRAIN_NET = REPO / "tools" / "train_net.py"
BASE_CONFIG = REPO / "configs" / "COCO-Detection" / "faster_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x.yaml"
THING_CATEGORIES = [{"id": c["id"], "name": c["name"]} for c in COCO_CATEGORIES if c["isthing"]]
# The generator's three shapes as COCO categories: person, car, dog.
SHAPE_CATEGORY_IDS = (1, 3, 18)
ITERATIONS = 4

TINY_YAML = """\
_BASE_: "{base}"
DATASETS:
  TRAIN: ("coco_2017_val",)
  TEST: ("coco_2017_val",)
SOLVER:
  IMS_PER_BATCH: 2
  BASE_LR: 0.001
  WARMUP_ITERS: 2
  STEPS: ()
  MAX_ITER: {iterations}
  CHECKPOINT_PERIOD: 2
OUTPUT_DIR: "{output_dir}"
"""


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("detectron2_datasets")
    write_coco(
        str(root / "coco" / "annotations" / "instances_val2017.json"),
        str(root / "coco" / "val2017"),
        draw_images(4, seed=5),
        THING_CATEGORIES,
        category_ids=SHAPE_CATEGORY_IDS,
    )
    return root


def _cli_opts():
    """The tiny model, as trailing KEY VALUE overrides (80 COCO classes, as the config)."""
    opts = tiny_model_opts(num_classes=80)
    return opts + ["MODEL.DCN.POOL_OFFSET_FC_DIMS", "[64, 64]"]


def _run(args, datasets_root, timeout=300):
    env = dict(os.environ, DETECTRON2_DATASETS=str(datasets_root), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, str(TRAIN_NET), *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    result.log = result.stdout + result.stderr
    return result


def _write_config(directory, output_dir, iterations=ITERATIONS):
    config = directory / "tiny_dcnv1.yaml"
    config.write_text(TINY_YAML.format(base=BASE_CONFIG, iterations=iterations, output_dir=output_dir))
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, datasets_root):
    """One training run of ITERATIONS iterations; returns (config, output_dir, result)."""
    work = tmp_path_factory.mktemp("train_net")
    output_dir = work / "output"
    config = _write_config(work, output_dir)
    result = _run(["--config-file", config, *_cli_opts()], datasets_root)
    assert result.returncode == 0, result.log[-5000:]
    return config, output_dir, result


def test_training_writes_periodic_and_final_checkpoints(trained):
    _, output_dir, _ = trained
    assert (output_dir / "model_0000001.pth").is_file()  # CHECKPOINT_PERIOD 2
    assert (output_dir / "model_final.pth").is_file()
    assert (output_dir / "last_checkpoint").read_text().strip() == "model_final.pth"


def test_training_runs_the_configured_iterations_with_dcn_det_components(trained):
    _, output_dir, result = trained
    checkpoint = torch.load(output_dir / "model_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["iteration"] == ITERATIONS - 1
    assert any("conv2_offset" in k for k in checkpoint["model"])  # deformable blocks
    assert any("roi_heads.box_pooler.pool.offset_fc" in k for k in checkpoint["model"])  # dpool
    assert "Starting training from iteration 0" in result.log


def test_training_evaluates_on_the_test_set_at_the_end(trained):
    _, output_dir, result = trained
    assert "Evaluation results for bbox" in result.log
    assert (output_dir / "inference" / "coco_2017_val" / "coco_instances_results.json").is_file()


def test_resume_continues_from_the_last_checkpoint(trained, tmp_path, datasets_root):
    _, first_output, _ = trained
    output_dir = tmp_path / "output"
    shutil.copytree(first_output, output_dir)
    config = _write_config(tmp_path, output_dir, iterations=ITERATIONS + 2)
    result = _run(["--config-file", config, "--resume", *_cli_opts()], datasets_root)
    assert result.returncode == 0, result.log[-5000:]
    assert f"Starting training from iteration {ITERATIONS}" in result.log
    checkpoint = torch.load(output_dir / "model_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["iteration"] == ITERATIONS + 1


def test_eval_only_prints_coco_metrics_for_the_given_weights(trained, tmp_path, datasets_root):
    config, first_output, _ = trained
    weights = first_output / "model_final.pth"
    output_dir = tmp_path / "eval_output"
    result = _run(
        ["--config-file", config, "--eval-only", *_cli_opts(), "MODEL.WEIGHTS", weights, "OUTPUT_DIR", output_dir], datasets_root
    )
    assert result.returncode == 0, result.log[-5000:]
    assert "Evaluation results for bbox" in result.log
    assert "copypaste: AP,AP50,AP75,APs,APm,APl" in result.log
    assert "Starting training" not in result.log
    assert str(weights) in result.log  # loaded the weights it was given
    assert (output_dir / "inference" / "coco_2017_val" / "coco_instances_results.json").is_file()


def test_missing_data_set_exits_with_an_error_naming_detectron2_datasets(tmp_path):
    empty = tmp_path / "no_datasets_here"
    empty.mkdir()
    config = _write_config(tmp_path, tmp_path / "output")
    result = _run(["--config-file", config, *_cli_opts()], empty, timeout=120)
    assert result.returncode != 0
    assert "DETECTRON2_DATASETS" in result.stderr
    assert str(empty / "coco") in result.stderr  # the path it looked for
    assert "Traceback" not in result.log
    assert not (tmp_path / "output").exists()  # failed before any work
