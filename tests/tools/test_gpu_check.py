"""tools/gpu_check.sh runs on a machine without a GPU: it does what needs none (tests,
the host device path compared with the CPU kernel) and reports each GPU step as skipped,
with the reason, in its summary."""
import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks the GPU-less behaviour; on a GPU run the script itself")
def test_gpu_check_without_gpu_skips_gpu_steps_and_says_why(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, SKIP_BUILD="1", GPU_CHECK_QUICK="1")
    result = subprocess.run(["bash", os.path.join(ROOT, "tools", "gpu_check.sh"), str(tmp_path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.load(open(tmp_path / "summary.json"))
    status = {s["step"]: s for s in summary["steps"]}
    assert status["build"]["status"] == "skipped"
    assert status["tests"]["status"] == "passed" and "passed" in summary["tests"]
    assert status["compare"]["status"] == "passed"
    for name in ("compare-cuda", "memcheck", "racecheck", "bench"):
        assert status[name]["status"] == "skipped"
        assert "no CUDA GPU" in status[name]["note"], status[name]
    compare = json.load(open(tmp_path / "compare.json"))
    assert compare["rows"] and all(r["ok"] and r["impl"] == "device_path" for r in compare["rows"])
    assert (tmp_path / "summary.md").read_text().count("skipped") >= 5
