"""Rows, settings and timing of the benchmarks: how one measurement is taken and checked.

A measurement is the median of separately timed runs after warm-up runs (synchronized on
CUDA); ``measure_fwd_and_fwd_bwd`` times a function forward-only and forward+backward and
turns a failure into an "n/a" row instead of ending the run. ``with_cpu_isa`` and
``num_threads`` make the variant rows (CPU instruction set, one thread).
"""
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from dcn_det.ops._cpu_isa import forced_cpu_isa


# --------------------------------------------------------------------------- rows


@dataclass
class Row:
    """One implementation measured on one case, device and dtype."""

    group: str
    case: str
    impl: str
    device: str
    dtype: str
    fwd_ms: Optional[float] = None  # None: not run or failed (shown as "n/a")
    fwd_bwd_ms: Optional[float] = None
    anchor: bool = False  # ratios of the case are relative to this row
    check_fwd: Optional[float] = None  # max |out - ref| of the forward output
    check_grad: Optional[float] = None  # max over grads of max|g - ref| / max|ref|
    is_reference: bool = False  # this row *is* the reference of the checks
    note: str = ""  # why a time is n/a


@dataclass
class Settings:
    devices: List[str]
    repeats: Dict[str, int]  # per device
    warmup: Dict[str, int]  # per device
    dcn_shapes: List[Tuple[int, int, int, int]]
    seed: int
    quick: bool = False
    onnxruntime: bool = True  # model group: also time the exported models in onnxruntime (CPU)


def progress(message: str) -> None:
    # stderr, flushed: the big CPU cases take many seconds each, show that we are alive.
    print(message, file=sys.stderr, flush=True)


def short_error(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line[:100]}"


# ------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    # CUDA launches are asynchronous: without a synchronize we would time the launch,
    # not the kernels.
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(step: Callable[[], None], device: str, warmup: int, repeats: int) -> Tuple[float, List[float]]:
    """Median wall time of ``step`` in ms over ``repeats`` runs, after ``warmup`` runs.

    Each run is timed on its own (synchronized before and after) so the median
    discards outliers from other load on the machine; warm-up runs absorb one-off
    costs (allocator growth, cuDNN algorithm search, lazy initialisation).
    """
    return time_interleaved({"step": step}, device, warmup, repeats)["step"]


def time_interleaved(steps: Dict[str, Callable[[], None]], device: str, warmup: int,
                     repeats: int) -> Dict[str, Tuple[float, List[float]]]:
    """``time_ms`` of several steps taken in turn (one run of each per round), so that
    a change of load on the machine during the measurement hits all of them alike: their
    ratios, not only their medians, are what the model group reports."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    _sync(device)
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(max(1, repeats)):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: (statistics.median(runs), runs) for name, runs in times.items()}


def fmt_ms(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def spread(times: Sequence[float]) -> str:
    # Shown in the progress lines only: a wide spread means a noisy (busy) machine.
    return f" (min {fmt_ms(min(times))}, max {fmt_ms(max(times))}, {len(times)} runs)" if len(times) > 1 else ""


def measure_fwd_and_fwd_bwd(
    fn: Callable[..., torch.Tensor],
    inputs: Dict[str, torch.Tensor],
    grad_output: torch.Tensor,
    device: str,
    warmup: int,
    repeats: int,
    label: str,
) -> Tuple[Optional[float], Optional[float], Optional[torch.Tensor], Optional[Dict[str, torch.Tensor]], str]:
    """Times ``fn(**inputs)`` forward-only and forward+backward.

    Returns (fwd ms, fwd+bwd ms, last forward output, gradients of the last
    fwd+bwd run, error note). A failing stage gives None (printed "n/a"), so one
    unsupported combination (e.g. torchvision in float16) does not end the run.
    """
    note = ""
    fwd_ms = fwd_bwd_ms = output = grads = None

    # Forward: inference style, no autograd graph (what a deployed detector runs).
    last: Dict[str, torch.Tensor] = {}

    def forward() -> None:
        last["out"] = fn(**inputs)

    progress(f"  {label} fwd ...")
    try:
        with torch.no_grad():
            fwd_ms, times = time_ms(forward, device, warmup, repeats)
        output = last["out"]
        progress(f"  {label} fwd: median {fmt_ms(fwd_ms)} ms{spread(times)}")
    except Exception as exc:  # noqa: BLE001  (report and go on: see docstring)
        note = short_error(exc)
        progress(f"  {label} fwd: n/a ({note})")
        return None, None, None, None, note
    last.clear()

    # Forward+backward: every input is a leaf that requires grad (as in training,
    # where offset and mask come from a conv and weight/bias are parameters); the
    # output is backpropagated with a fixed random gradient. Grads are reset before
    # each run, so after the last run they hold exactly one backward's result.
    leaves = {name: t.detach().requires_grad_() for name, t in inputs.items()}

    def forward_backward() -> None:
        for t in leaves.values():
            t.grad = None
        fn(**leaves).backward(grad_output)

    progress(f"  {label} fwd+bwd ...")
    try:
        fwd_bwd_ms, times = time_ms(forward_backward, device, warmup, repeats)
        grads = {name: t.grad for name, t in leaves.items() if t.grad is not None}
        progress(f"  {label} fwd+bwd: median {fmt_ms(fwd_bwd_ms)} ms{spread(times)}")
    except Exception as exc:  # noqa: BLE001
        note = short_error(exc)
        progress(f"  {label} fwd+bwd: n/a ({note})")
    return fwd_ms, fwd_bwd_ms, output, grads, note


def compare(
    output: Optional[torch.Tensor],
    grads: Optional[Dict[str, torch.Tensor]],
    ref_output: torch.Tensor,
    ref_grads: Dict[str, torch.Tensor],
) -> Tuple[Optional[float], Optional[float]]:
    """(max |out - ref_out|, max over tensors of max|g - ref_g| / max|ref_g|)."""
    check_fwd = None if output is None else (output.float() - ref_output).abs().max().item()
    check_grad = None
    if grads is not None:
        worst = 0.0
        for name, ref in ref_grads.items():
            if name not in grads:
                return check_fwd, float("inf")  # a gradient the reference has is missing
            scale = ref.abs().max().item() or 1.0
            worst = max(worst, (grads[name].float() - ref).abs().max().item() / scale)
        check_grad = worst
    return check_fwd, check_grad


# ----------------------------------------------------------------------- variants


def with_cpu_isa(fn, isa: str):
    """fn with the CPU loops forced to instruction set ``isa`` (a row per variant)."""
    def run(*args, **kwargs):
        with forced_cpu_isa(isa):
            return fn(*args, **kwargs)
    return run


ONE_THREAD = "[1 thread]"


@contextlib.contextmanager
def num_threads(threads: Optional[int]) -> Iterator[None]:
    """torch's intra-op threads (OpenMP, MKL, oneDNN) set to ``threads`` inside the block."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
