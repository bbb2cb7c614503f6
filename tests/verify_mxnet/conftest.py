"""Where the tests find a Python with MXNet 1.9.1: $DCN_DET_MXNET_PYTHON, else the venv that
`make mxnet-venv` creates (.venv-mxnet). MXNet needs numpy<1.24, so it lives apart from the
project's venv and runs in a subprocess; without it these tests skip and say why."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _mxnet_python():
    candidate = os.environ.get("DCN_DET_MXNET_PYTHON") or str(ROOT / ".venv-mxnet" / "bin" / "python")
    if not os.path.exists(candidate):
        return None, f"no MXNet Python ({candidate} missing; `make mxnet-venv` creates it)"
    probe = subprocess.run([candidate, "-c", "import mxnet; print(mxnet.__version__)"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None, f"{candidate} cannot import mxnet: {probe.stderr.strip()[-300:]}"
    return candidate, None


@pytest.fixture(scope="session")
def mxnet_python():
    python, reason = _mxnet_python()
    if python is None:
        pytest.skip(reason)
    return python


@pytest.fixture
def run_mxnet(mxnet_python, tmp_path):
    """run_mxnet(script, **arrays) -> dict of arrays: runs tests/verify_mxnet/<script> under
    the MXNet Python as ``script IN.npz OUT.npz`` and returns what it saved."""
    import numpy as np

    def run(script: str, **arrays):
        src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
        np.savez(src, **arrays)
        result = subprocess.run([mxnet_python, str(Path(__file__).with_name(script)), str(src), str(dst)],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return dict(np.load(dst))

    return run
