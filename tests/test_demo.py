"""dcn_det.demo's tables and run layout (the demo runs themselves: tests/tools/test_demo.py)."""
import os

import pytest

from dcn_det import demo


def test_seeds_table_shows_mean_std_and_range_per_model_and_split_and_the_cost_ratio():
    nan = float("nan")
    rows = [
        ("plain", "shapes_dcn_val", {"AP": 30.0, "AP50": 50.0, "AP75": 20.0}, 0.5),
        ("plain", "shapes_dcn_val", {"AP": 34.0, "AP50": 54.0, "AP75": 24.0}, 0.5),
        ("dcnv2", "shapes_dcn_val", {"AP": 40.0, "AP50": 60.0, "AP75": 20.0}, 0.6),
        ("dcnv2", "shapes_dcn_val", {"AP": nan, "AP50": nan, "AP75": nan}, 0.7),  # no detection at all
    ]
    lines = demo.seeds_table(rows).splitlines()
    assert lines[2] == "| plain | shapes_dcn_val | 2 | 32.0 ± 2.8 (30.0–34.0) | 52.0 ± 2.8 (50.0–54.0) | 22.0 ± 2.8 (20.0–24.0) | 0.50 |"
    assert lines[3] == ("| dcnv2 | shapes_dcn_val | 2 (1 with no detection: 0 AP) | 20.0 ± 28.3 (0.0–40.0) "
                        "| 30.0 ± 42.4 (0.0–60.0) | 10.0 ± 14.1 (0.0–20.0) | 0.65 |")
    assert demo.cost_ratios(rows) == pytest.approx({"dcnv2": 1.3})
    assert demo.run_dir("out", "plain", 0, 1) == os.path.join("out", "plain")  # one seed: the old layout
    assert demo.run_dir("out", "plain", 2, 3) == os.path.join("out", "plain", "seed2")
