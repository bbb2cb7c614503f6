"""Fixtures shared by the operator tests."""
import pytest
import torch

from dcn_det.ops._device_path import device_path_calls, host_device_path

from .devices import DEVICE_PATH_COLUMN_BUDGET


@pytest.fixture(autouse=True)
def _device_path_switch(request):
    """Tests parametrised with the ``device_path`` device (devices.py) run with the
    host device path switched on, and must have called it: a test that never reached
    the device algorithm would otherwise pass as a copy of its CPU variant."""
    if request.node.get_closest_marker("device_path") is None:
        yield
        return
    calls = device_path_calls()
    with host_device_path(column_budget=DEVICE_PATH_COLUMN_BUDGET):
        yield
    assert device_path_calls() > calls, "a device_path test never ran the device path"


@pytest.fixture
def deterministic_algorithms():
    """torch.use_deterministic_algorithms(True) for one test, restored afterwards."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
