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


def _run_demo(out, *args, studies=("detection",)):
    cmd = [sys.executable, os.path.join(ROOT, "tools", "demo.py"), *args, "--iters", "10", "--images", "16", "6",
           "--digits", "200", "50", "--classification-seeds", "2", "--studies", *studies,
           "--output", str(out), "DATALOADER.NUM_WORKERS", "0"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_tiny_demo_trains_evaluates_draws_and_resumes(tmp_path):
    first = _run_demo(tmp_path, studies=("classification", "detection"))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    everything = json.load(open(tmp_path / "results.json"))
    results = [r for r in everything if r["study"] == "detection"]
    assert {(r["model"], r["split"]) for r in results} == {
        (m, s) for m in ("plain", "dcnv2") for s in ("shapes_dcn_val", "shapes_dcn_val_scaled")
    }
    assert all(r["ms_per_image"] > 0 and r["train_s_per_iter"] > 0 for r in results)
    # The classification study first: 3 models x 2 seeds x 3 splits, and how long it took.
    classification = [r for r in everything if r["study"] == "classification"]
    assert everything[:len(classification)] == classification
    rows = [r for r in classification if "accuracy" in r]
    assert sorted((r["model"], r["split"], r["seed"]) for r in rows) == sorted(
        (m, s, seed) for m in ("plain", "dcnv1", "dcnv2") for s in ("in_range", "scaled", "rotated") for seed in (0, 1))
    assert all(set(r) == {"study", "model", "split", "seed", "accuracy"} and 0 <= r["accuracy"] <= 100 for r in rows)
    assert [set(r) for r in classification if "accuracy" not in r] == [{"study", "seconds"}]
    report = (tmp_path / "report.md").read_text()
    assert report.index("## Classification") < report.index("## Detection")
    assert "| dcnv2 | 2 |" in report and "classification_sampling.png" in report
    digits_figure = cv2.imread(str(tmp_path / "classification_sampling.png"))
    assert digits_figure is not None and digits_figure.shape[:2] == (2 * 244, 3 * 244)
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

    second = _run_demo(tmp_path, studies=("classification", "detection"))  # everything is reused, nothing retrained
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already trained" in second.stdout + second.stderr
    assert "classification study: reusing" in second.stdout
    assert json.load(open(tmp_path / "results.json")) == everything


@pytest.mark.slow
def test_tiny_rfcn_demo_trains_the_rfcn_pair_and_draws_its_pooling_bins(tmp_path):
    run = _run_demo(tmp_path, "--models", "rfcn_plain", "rfcn_dcnv2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.load(open(tmp_path / "results.json"))
    assert {r["model"] for r in results} == {"rfcn_plain", "rfcn_dcnv2"} and {r["study"] for r in results} == {"detection"}
    assert "| rfcn_dcnv2 | shapes_dcn_val |" in (tmp_path / "report.md").read_text()
    pooling = cv2.imread(str(tmp_path / "pooling_offsets.png"))
    assert pooling is not None and pooling.shape[1] >= 600 and pooling.std() > 20


@pytest.mark.slow
def test_tiny_demo_with_seeds_trains_each_model_per_seed_and_reports_mean_and_spread(tmp_path):
    run = _run_demo(tmp_path, "--seeds", "2", "--seed", "5", "--threads", "1")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.load(open(tmp_path / "results.json"))
    assert sorted({(r["model"], r["seed"]) for r in results}) == [("dcnv2", 5), ("dcnv2", 6), ("plain", 5), ("plain", 6)]
    for model in ("plain", "dcnv2"):
        for i, seed in enumerate((5, 6)):
            assert json.load(open(tmp_path / model / f"seed{i}" / "demo_done.json"))["seed"] == seed
    report = (tmp_path / "report.md").read_text()
    # one summary line per model and split over the 2 runs (10 iterations detect nothing: nan
    # cells; the mean ± std (min–max) format is checked below), then the per-run table
    summary = [line for line in report.splitlines() if line.startswith("| dcnv2 | shapes_dcn_val_scaled | 2")]
    assert len(summary) == 1 and "mean ± sample std (min–max)" in report
    assert "| plain (seed 6) | shapes_dcn_val |" in report
    assert "dcnv2/plain" in report and "dcnv2/plain" in run.stdout  # the training-cost ratio

    again = _run_demo(tmp_path, "--seeds", "2", "--seed", "5", "--threads", "1")  # reused, not retrained
    assert again.returncode == 0 and (again.stdout + again.stderr).count("already trained") == 4


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--classification-seeds", "0"], "--classification-seeds must be >= 1"),
    (["--digits", "5", "100"], "--digits: TRAIN and TEST must be >= 10"),
    (["--mnist-root", "/nonexistent/mnist"], "--mnist-root '/nonexistent/mnist' is not a folder"),
    (["--studies", "segmentation"], "invalid choice: 'segmentation'"),
])
def test_bad_arguments_are_one_error_line(args, message):
    cmd = [sys.executable, os.path.join(ROOT, "tools", "demo.py"), *args]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and message in run.stderr


def test_unknown_model_name_is_rejected_with_the_choices():
    cmd = [sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--models", "rfcn_dcnv1"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "invalid choice: 'rfcn_dcnv1'" in run.stderr and "rfcn_dcnv2" in run.stderr
