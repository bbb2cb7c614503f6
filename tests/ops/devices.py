"""The devices the operator tests run on, as pytest parameters.

* ``cpu``: the CPU kernels (csrc/cpu/).
* ``device_path``: CPU tensors, run through the device (CUDA) algorithm on the host
  (csrc/cpu/device_path.h): the element math a GPU executes, executed here. Such a
  test runs with ``dcn_det.ops._device_path.host_device_path`` switched on (by the
  autouse fixture in conftest.py), and with a column budget of one element, so every
  image of a deform_conv2d batch is its own chunk.
* ``cuda``: the CUDA kernels; skipped, with the reason, without a GPU or CUDA build.
"""
import pytest
import torch


def _cuda_skip_reason():
    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine"
    from dcn_det.ops._extension import has_cuda_kernels

    if not has_cuda_kernels():
        return "dcn_det was built without its CUDA kernels"
    return None


CUDA_SKIP = _cuda_skip_reason()
CUDA_OK = CUDA_SKIP is None
requires_cuda = [pytest.mark.cuda, pytest.mark.skipif(not CUDA_OK, reason=str(CUDA_SKIP))]

# The column budget of the device path tests: 1 element, i.e. one image per chunk.
DEVICE_PATH_COLUMN_BUDGET = 1

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cpu", id="device_path", marks=pytest.mark.device_path),
    pytest.param("cuda", id="cuda", marks=requires_cuda),
]
