"""The test suite's switch of the compiled operators (``csrc/test_hooks.h``).

``host_device_path()`` makes the CPU registrations of ``torch.ops.dcn_det.*`` run the
device (CUDA) algorithm on the host: the very element structs a GPU thread runs
(``csrc/common/*_elements.h``), launched over the same index ranges and chunks by
``csrc/cpu/device_path.h``, with atomic adds where the GPU has them. The CPU test suite
runs under it, so CI checks the GPU's element math on machines without a GPU.

``column_budget`` lowers the element count at which ``deform_conv2d`` splits a batch
into chunks (default 2**24), so that small inputs run through several chunks.

Not for users: the device path is slow, and the switch is process-wide.
"""
import contextlib
from typing import Iterator, Optional

from . import _extension  # noqa: F401  (loads dcn_det._C)
from dcn_det import _C


@contextlib.contextmanager
def test_hooks(host_device_path: Optional[bool] = None, column_budget: Optional[int] = None) -> Iterator[None]:
    """Within the block, CPU calls take the host device path (True) or the CPU kernels
    (False), and ``deform_conv2d`` chunks at ``column_budget`` elements (0: the
    default). None keeps the current setting."""
    current_path, current_budget = _C._get_test_hooks()
    host_device_path = current_path if host_device_path is None else bool(host_device_path)
    column_budget = current_budget if column_budget is None else column_budget
    if not isinstance(column_budget, int) or column_budget < 0:
        raise ValueError(f"test_hooks: column_budget must be an int >= 0, got {column_budget!r}")
    previous = _C._set_test_hooks(host_device_path, column_budget)
    try:
        yield
    finally:
        _C._set_test_hooks(*previous)


def device_path_calls() -> int:
    """How many operator calls (forward or backward) took the host device path so far."""
    return _C._device_path_calls()


def host_device_path(column_budget: Optional[int] = None):
    """``test_hooks(host_device_path=True, column_budget=column_budget)``."""
    return test_hooks(True, column_budget)


test_hooks.__test__ = False  # not a pytest test, despite its name
