"""A tiny run of the whole demo pipeline (generate, train, evaluate, draw, report), so the
main job cannot silently break."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_demo(out, *args):
    cmd = [sys.executable, os.path.join(ROOT, "tools", "demo.py"), *args, "--iters", "10", "--images", "16", "6",
           "--output", str(out), "DATALOADER.NUM_WORKERS", "0"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_tiny_demo_trains_evaluates_draws_and_resumes(tmp_path):
    first = _run_demo(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    results = json.load(open(tmp_path / "results.json"))
    assert {(r["model"], r["split"]) for r in results} == {
        (m, s) for m in ("plain", "dcnv2") for s in ("shapes_dcn_val", "shapes_dcn_val_scaled")
    }
    assert all(r["ms_per_image"] > 0 and r["train_s_per_iter"] > 0 for r in results)
    report = (tmp_path / "report.md").read_text()
    assert "| dcnv2 | shapes_dcn_val_scaled |" in report and "sampling_locations.png" in report
    figure = cv2.imread(str(tmp_path / "sampling_locations.png"))
    assert figure is not None and figure.shape[0] > 100 and figure.shape[1] > 200
    assert "pooling_offsets.png" in report
    pooling = cv2.imread(str(tmp_path / "pooling_offsets.png"))
    # one row (dcnv2 only: plain has no deformable pooling): the image and one zoom per box
    assert pooling is not None and 250 < pooling.shape[0] < 500 and pooling.shape[1] >= 600
    assert pooling.std() > 20 and len(np.unique(pooling.reshape(-1, 3), axis=0)) > 100
    for model in ("plain", "dcnv2"):
        assert (tmp_path / model / "model_final.pth").exists()

    second = _run_demo(tmp_path)  # everything is reused, nothing retrained
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already trained" in second.stdout + second.stderr


@pytest.mark.slow
def test_tiny_rfcn_demo_trains_the_rfcn_pair_and_draws_its_pooling_bins(tmp_path):
    run = _run_demo(tmp_path, "--models", "rfcn_plain", "rfcn_dcnv2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.load(open(tmp_path / "results.json"))
    assert {r["model"] for r in results} == {"rfcn_plain", "rfcn_dcnv2"}
    assert "| rfcn_dcnv2 | shapes_dcn_val |" in (tmp_path / "report.md").read_text()
    pooling = cv2.imread(str(tmp_path / "pooling_offsets.png"))
    assert pooling is not None and pooling.shape[1] >= 600 and pooling.std() > 20


def test_unknown_model_name_is_rejected_with_the_choices():
    cmd = [sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--models", "rfcn_dcnv1"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "invalid choice: 'rfcn_dcnv1'" in run.stderr and "rfcn_dcnv2" in run.stderr
