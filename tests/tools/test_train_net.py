"""tools/train_net.py end to end, as a subprocess: train with checkpoints, --resume,
--eval-only, and the error for a missing data set. The data set is detectron2's built-in
``coco_2017_val``, read from a tiny $DETECTRON2_DATASETS (train_net_helpers)."""
import shutil

import pytest
import torch

from .train_net_helpers import cli_opts as _cli_opts
from .train_net_helpers import run as _run
from .train_net_helpers import write_config

pytestmark = pytest.mark.slow

ITERATIONS = 4


def _write_config(directory, output_dir, iterations=ITERATIONS):
    return write_config(directory, output_dir, iterations=iterations)


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
