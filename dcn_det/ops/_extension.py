"""Loads the compiled operator library, with an error that says how to build it.

``DCN_DET_EXTENSION=/path/to/_C.so`` loads another build of the library instead of the
one in the package (the instrumented builds of tools/coverage.sh).
"""
import importlib.util
import os
import sys

import torch  # noqa: F401  (first: the library links against torch's shared libraries)

_BUILD_HINT = (
    "dcn_det's compiled operators (dcn_det._C) are not built or failed to load. "
    "Build them with `make install` (creates .venv) or, in an environment that has "
    "torch, `pip install --no-build-isolation -e .` from the repository root."
)


def _load_from(path: str):
    if not os.path.isfile(path):
        raise ImportError(f"DCN_DET_EXTENSION={path!r} is not a file")
    spec = importlib.util.spec_from_file_location("dcn_det._C", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["dcn_det._C"] = module
    spec.loader.exec_module(module)  # loading registers torch.ops.dcn_det.*
    import dcn_det

    dcn_det._C = module


try:
    if os.environ.get("DCN_DET_EXTENSION") and "dcn_det._C" not in sys.modules:
        _load_from(os.environ["DCN_DET_EXTENSION"])
    from dcn_det import _C  # noqa: F401  (loading registers torch.ops.dcn_det.*)
except ImportError as e:  # pragma: no cover - exercised only without a build
    raise ImportError(f"{_BUILD_HINT}\nOriginal error: {e}") from e


def has_cuda_kernels() -> bool:
    """True when the library was built with the CUDA kernels."""
    import torch

    return torch._C._dispatch_has_kernel_for_dispatch_key("dcn_det::deform_conv2d", "CUDA")
