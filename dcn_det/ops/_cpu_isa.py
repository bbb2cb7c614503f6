"""The instruction set of the CPU kernels' vectorised loops (``csrc/cpu/isa/``).

The loops are compiled for the baseline x86-64 target, for AVX2 + FMA and for AVX-512;
the widest one the CPU supports runs, capped by ``ATEN_CPU_CAPABILITY`` (PyTorch's own
switch: ``default``, ``avx2`` or ``avx512``), read once when the first CPU kernel runs.

    >>> from dcn_det.ops import cpu_isa
    >>> cpu_isa()
    'avx512'

``forced_cpu_isa(name)`` is for the test suite (process-wide, not thread-safe).
"""
import contextlib
from typing import Iterator, List

from . import _extension  # noqa: F401  (loads dcn_det._C)
from dcn_det import _C


def cpu_isa() -> str:
    """The instruction set the CPU loops run with: "baseline", "avx2" or "avx512"."""
    return _C._cpu_isa()[0]


def available_cpu_isas() -> List[str]:
    """Every instruction set this build has and this CPU supports."""
    return list(_C._cpu_isa()[2])


@contextlib.contextmanager
def forced_cpu_isa(name: str) -> Iterator[None]:
    """Within the block the CPU loops run with ``name`` (one of available_cpu_isas())."""
    previous = _C._cpu_isa()[1]
    _C._set_cpu_isa(name)
    try:
        yield
    finally:
        _C._set_cpu_isa(previous)
