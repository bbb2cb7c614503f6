"""tools/benchmark_ops.py --quick runs every group end to end and prints a table whose rows
carry real times and ratios against their anchors (a smoke test, not a timing test); the
model group includes onnxruntime rows (inference only) for the exported DCNv2 model."""
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load():
    spec = importlib.util.spec_from_file_location("benchmark_ops", os.path.join(ROOT, "tools", "benchmark_ops.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_prints_every_group_with_times_and_ratios(capsys, two_threads):
    bench = _load()
    assert bench.main(["--quick", "--device", "cpu", "--markdown", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| group")]
    by_group = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        by_group.setdefault(cells[0], []).append(cells)
    assert set(by_group) == {"deform_conv2d", "deform_psroi_pool", "model"}
    for group, cells in by_group.items():
        for c in cells:
            fwd_ms, fwd_ratio, fwd_bwd_ms, fwd_bwd_ratio = c[5], c[6], c[7], c[8]
            assert float(fwd_ms) > 0 and re.fullmatch(r"\d+\.\d\dx", fwd_ratio), (group, c)
            if c[4].endswith("onnxruntime"):  # inference only
                assert fwd_bwd_ms == fwd_bwd_ratio == "n/a", c
                continue
            assert float(fwd_bwd_ms) > 0 and re.fullmatch(r"\d+\.\d\dx", fwd_bwd_ratio), (group, c)
    # The model group: Faster R-CNN R-50-FPN (plain anchor, DCNv1, DCNv2, DCNv2 + mdpool; whole
    # model and backbone; with --quick, the last also exported and run in onnxruntime) and
    # R-FCN R-101 (plain anchor, DCNv1 + dpsroi, DCNv2 + mdpsroi; whole model).
    impls = {(c[1].split(",")[0], c[4]) for c in by_group["model"]}
    assert len(impls) == 4 * 2 + 2 + 3, sorted(impls)
    ort_rows = [c for c in by_group["model"] if c[4] == "mdconv c3-c5 + mdpool (DCNv2) onnxruntime"]
    assert len(ort_rows) == 2
    backbone_check = [float(c[9]) for c in ort_rows if c[1].startswith("R-50-FPN backbone")]
    assert len(backbone_check) == 1 and backbone_check[0] < 1e-2  # onnxruntime vs PyTorch, same weights
    # The anchors are named in the legend, and their own ratio is 1.00x. (Another row may also
    # read 1.00x when its time happens to match, so the anchors are not inferred from the ratio.)
    legend = [line for line in out.splitlines() if line.startswith("- ratio = time / time of the case's anchor")]
    assert len(legend) == 1 and "model: plain R-50-FPN" in legend[0] and "model: plain R-FCN" in legend[0], legend
    for c in by_group["model"]:
        if c[4] in ("plain R-50-FPN", "plain R-FCN"):
            assert c[6] == c[8] == "1.00x", c
    assert {c[1].split(",")[0] for c in by_group["model"] if c[4] == "plain R-FCN"} == {"R-FCN R-101"}
    # The deformable conv rows are checked against torchvision: small differences.
    for c in by_group["deform_conv2d"]:
        if c[4] == "dcn_det":
            assert float(c[9]) < 1e-4 and float(c[10]) < 1e-4, c
    # One-thread rows of F.conv2d and dcn_det, and the scaling lines under the table (two_threads).
    one_thread = {c[4] for c in by_group["deform_conv2d"] if c[4].endswith("[1 thread]")}
    assert one_thread == {"F.conv2d [1 thread]", "dcn_det [1 thread]"}
    scaling = [line for line in out.splitlines() if line.startswith("- thread scaling")]
    assert len(scaling) == 2 * len(bench.DCN_QUICK_SHAPES), scaling
    assert all(re.search(r"1 -> \d+ threads: \d+\.\d\dx fwd, \d+\.\d\dx fwd\+bwd$", line) for line in scaling)
