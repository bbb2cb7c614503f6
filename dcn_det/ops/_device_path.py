"""The test suite's switch of the compiled operators (``csrc/test_hooks.h``).

``host_device_path()`` makes the CPU registrations of ``torch.ops.dcn_det.*`` run the
device (CUDA) algorithm on the host: the very element structs a GPU thread runs
(``csrc/common/*_elements.h``), launched over the same index ranges and chunks by
``csrc/cpu/device_path.h``, with atomic adds where the GPU has them. The CPU test suite
runs under it, so CI checks the GPU's element math on machines without a GPU.

``column_budget`` lowers the element count at which ``deform_conv2d`` splits a batch
into chunks (default 2**24), so that small inputs run through several chunks.

``conv_path`` forces the path of the CPU ``deform_conv2d`` forward and backward:
``"fused"`` (a tile of columns at a time, multiplied while in cache) or ``"unfused"`` (the
whole column matrix, one product); ``"auto"`` (default) picks by weight size, which sends
every small test shape to the fused one.

Not for users: the device path is slow, and the switch is process-wide.
"""
import contextlib
from typing import Iterator, Optional

from . import _extension  # noqa: F401  (loads dcn_det._C)
from dcn_det import _C


_CONV_PATHS = ("auto", "fused", "unfused")


@contextlib.contextmanager
def test_hooks(host_device_path: Optional[bool] = None, column_budget: Optional[int] = None,
               conv_path: Optional[str] = None) -> Iterator[None]:
    """Within the block, CPU calls take the host device path (True) or the CPU kernels
    (False), ``deform_conv2d`` chunks at ``column_budget`` elements (0: the default), and
    its CPU forward and backward take the ``conv_path`` path ("auto", "fused", "unfused"). None
    keeps the current setting."""
    current_path, current_budget, current_path_choice = _C._get_test_hooks()
    host_device_path = current_path if host_device_path is None else bool(host_device_path)
    column_budget = current_budget if column_budget is None else column_budget
    if not isinstance(column_budget, int) or column_budget < 0:
        raise ValueError(f"test_hooks: column_budget must be an int >= 0, got {column_budget!r}")
    if conv_path is None:
        path_code = current_path_choice
    elif conv_path in _CONV_PATHS:
        path_code = _CONV_PATHS.index(conv_path)
    else:
        raise ValueError(f"test_hooks: conv_path must be one of {_CONV_PATHS}, got {conv_path!r}")
    previous = _C._set_test_hooks(host_device_path, column_budget, path_code)
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
