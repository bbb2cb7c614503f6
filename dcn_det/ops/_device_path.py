"""The test suite's switch of the compiled operators (``csrc/test_hooks.h``).

``host_device_path()`` makes the CPU registrations of ``torch.ops.dcn_det.*`` run the
device (CUDA) algorithm on the host: the very element structs a GPU thread runs
(``csrc/common/*_elements.h``), launched over the same index ranges and chunks by
``csrc/cpu/device_path.h``, with atomic adds where the GPU has them. The CPU test suite
runs under it, so CI checks the GPU's element math on machines without a GPU.

``column_budget`` lowers the element count at which ``deform_conv2d`` splits a batch
into chunks (default 2**24), so that small inputs run through several chunks.

``conv_forward`` forces the CPU ``deform_conv2d`` forward's path: ``"fused"`` (a tile of
columns at a time, multiplied while in cache) or ``"unfused"`` (the whole column matrix,
one product); ``"auto"`` (default) picks by weight size, which sends every small test
shape to the fused one.

Not for users: the device path is slow, and the switch is process-wide.
"""
import contextlib
from typing import Iterator, Optional

from . import _extension  # noqa: F401  (loads dcn_det._C)
from dcn_det import _C


_CONV_FORWARD = ("auto", "fused", "unfused")


@contextlib.contextmanager
def test_hooks(host_device_path: Optional[bool] = None, column_budget: Optional[int] = None,
               conv_forward: Optional[str] = None) -> Iterator[None]:
    """Within the block, CPU calls take the host device path (True) or the CPU kernels
    (False), ``deform_conv2d`` chunks at ``column_budget`` elements (0: the default), and
    its CPU forward takes the ``conv_forward`` path ("auto", "fused", "unfused"). None
    keeps the current setting."""
    current_path, current_budget, current_forward = _C._get_test_hooks()
    host_device_path = current_path if host_device_path is None else bool(host_device_path)
    column_budget = current_budget if column_budget is None else column_budget
    if not isinstance(column_budget, int) or column_budget < 0:
        raise ValueError(f"test_hooks: column_budget must be an int >= 0, got {column_budget!r}")
    if conv_forward is None:
        forward_code = current_forward
    elif conv_forward in _CONV_FORWARD:
        forward_code = _CONV_FORWARD.index(conv_forward)
    else:
        raise ValueError(f"test_hooks: conv_forward must be one of {_CONV_FORWARD}, got {conv_forward!r}")
    previous = _C._set_test_hooks(host_device_path, column_budget, forward_code)
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
