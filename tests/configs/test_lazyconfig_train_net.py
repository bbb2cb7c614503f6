"""detectron2's own tools/lazyconfig_train_net.py, copied unchanged (as a user copies it out of
detectron2), trains a demo twin (configs/Demo/faster_rcnn_dcnv1.py: deformable convs and RoI
pooling) for a few iterations on the CPU on the generated shapes, checkpoints it and evaluates
it with the twin's COCO evaluator."""
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def _detectron2_script():
    """The script as the installed detectron2 ships it: the repackaged wheel's ``tools``
    package, or ``tools/`` beside the package in a source checkout (upstream main)."""
    import detectron2

    spec = importlib.util.find_spec("tools.lazyconfig_train_net")
    candidates = [Path(spec.origin)] if spec and spec.origin else []
    candidates.append(Path(detectron2.__file__).resolve().parents[1] / "tools" / "lazyconfig_train_net.py")
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip("this detectron2 install has no tools/lazyconfig_train_net.py to run")


def test_detectron2_lazyconfig_train_net_trains_and_evaluates_a_demo_twin(tmp_path):
    script = tmp_path / "lazyconfig_train_net.py"
    shutil.copy(_detectron2_script(), script)
    output = tmp_path / "output"
    command = [
        sys.executable, str(script),
        "--config-file", str(REPO / "configs" / "Demo" / "faster_rcnn_dcnv1.py"),
        "train.device=cpu", "train.max_iter=3", f"train.output_dir={output}",
        "train.checkpointer.period=2", "train.log_period=1",
        # The 200-image validation split trains and tests: fewer images to generate.
        "dataloader.train.dataset.names=shapes_dcn_val", "dataloader.train.total_batch_size=2",
    ]
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path / "datasets"))
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]

    metrics = [json.loads(line) for line in (output / "metrics.json").read_text().splitlines()]
    losses = [m["total_loss"] for m in metrics if "total_loss" in m]
    assert [m["iteration"] for m in metrics if "total_loss" in m] == [0, 1, 2]
    assert all(math.isfinite(x) and x > 0 for x in losses)
    checkpoint = torch.load(output / "model_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["iteration"] == 2
    # The deformable layers were trained and saved under the YAML model's names.
    names = set(checkpoint["model"])
    assert "backbone.bottom_up.res3.0.conv2_offset.weight" in names
    assert any(n.startswith("roi_heads.box_pooler.pool.offset_fc") for n in names), sorted(names)[:20]
    # Evaluated at the end with the twin's evaluator, on the 7 shape classes.
    assert "Evaluation results for bbox" in log
    assert "copypaste: AP,AP50,AP75,APs,APm,APl" in log
    assert "seven" in log
