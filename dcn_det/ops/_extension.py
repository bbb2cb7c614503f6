"""Loads the compiled operator library, with an error that says how to build it."""

_BUILD_HINT = (
    "dcn_det's compiled operators (dcn_det._C) are not built or failed to load. "
    "Build them with `make install` (creates .venv) or, in an environment that has "
    "torch, `pip install --no-build-isolation -e .` from the repository root."
)

try:
    from dcn_det import _C  # noqa: F401  (loading registers torch.ops.dcn_det.*)
except ImportError as e:  # pragma: no cover - exercised only without a build
    raise ImportError(f"{_BUILD_HINT}\nOriginal error: {e}") from e


def has_cuda_kernels() -> bool:
    """True when the library was built with the CUDA kernels."""
    import torch

    return torch._C._dispatch_has_kernel_for_dispatch_key("dcn_det::deform_conv2d", "CUDA")
