#!/usr/bin/env python
"""Benchmark dcn_det's compiled operators against torchvision and a dense floor.

Prints one table of forward and forward+backward times (median of --repeats runs)
and each time as a ratio to the case's *anchor* (for deformable convolution: the
dense F.conv2d of the same shape, i.e. the floor that a deformable kernel cannot
beat). All rows of a table come from one run, so the ratios compare like with like
even when absolute times drift between machines or runs.

    python tools/benchmark_ops.py                  # CPU, plus CUDA when present
    python tools/benchmark_ops.py --quick          # tiny shapes, 1 repeat (smoke test)
    python tools/benchmark_ops.py --device cpu --shapes 2x512x25x34 --markdown

Every deformable row also carries a sanity check against a reference (torchvision
in float32 on the same inputs): max |difference| of the forward output and the
largest relative difference of the gradients, so that a fast but wrong kernel
cannot look good.

Layout: a benchmark *group* is a function ``(Settings) -> Iterator[Row]`` listed in
GROUPS. Rows are (group, case, impl, device, dtype, fwd ms, fwd+bwd ms, checks);
one printer turns any list of rows into the table. Groups: deform_conv2d,
deform_psroi_pool (vs torchvision.ops.ps_roi_align / roi_align) and model (a Faster
R-CNN R-50-FPN inference and training iteration, plain vs deformable, and the same
models exported to ONNX and run in onnxruntime on the CPU).

This is a command-line tool only; nothing in the dcn_det library imports it.
Progress goes to stderr, the table to stdout (so ``> table.md`` captures just the table).
"""
import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

try:
    import torchvision
except ImportError:  # the deformable rows need it; fail early with a clear message
    sys.exit("benchmark_ops.py needs torchvision (the reference implementation)")

from dcn_det.ops import deform_conv2d as dcn_deform_conv2d
from dcn_det.ops import available_cpu_isas, cpu_isa, deform_psroi_pool
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


def _spread(times: Sequence[float]) -> str:
    # Shown in the progress lines only: a wide spread means a noisy (busy) machine.
    return f" (min {_fmt_ms(min(times))}, max {_fmt_ms(max(times))}, {len(times)} runs)" if len(times) > 1 else ""


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
        progress(f"  {label} fwd: median {_fmt_ms(fwd_ms)} ms{_spread(times)}")
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
        progress(f"  {label} fwd+bwd: median {_fmt_ms(fwd_bwd_ms)} ms{_spread(times)}")
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


# ------------------------------------------------------- group: deform_conv2d

# Shapes of the issue: a ResNet-50 C4/C5-like stage of Faster R-CNN at ~800x1088
# input (2 images), and a high-resolution, few-channel map. 3x3 kernel, padding 1,
# out channels = in channels.
DCN_SHAPES = [(2, 256, 50, 68), (2, 512, 25, 34), (1, 64, 128, 128)]
DCN_QUICK_SHAPES = [(1, 8, 12, 16), (2, 16, 9, 7)]


def _dcn_dense(input, offset, weight, bias, mask):  # noqa: A002  (torch's names)
    # The floor: same conv without sampling; offset and mask are ignored.
    return F.conv2d(input, weight, bias, padding=1)


def _dcn_torchvision(input, offset, weight, bias, mask):  # noqa: A002
    return torchvision.ops.deform_conv2d(input, offset, weight, bias, padding=1, mask=mask)


def _dcn_ours(input, offset, weight, bias, mask):  # noqa: A002
    return dcn_deform_conv2d(input, offset, weight, bias, padding=1, mask=mask)


# (name, function, anchor?, checked against the reference?). Anchor first, so the
# table reads floor -> reference -> ours.
DCN_IMPLS = [
    ("F.conv2d", _dcn_dense, True, False),
    ("torchvision", _dcn_torchvision, False, True),
    ("dcn_det", _dcn_ours, False, True),
]


def _with_cpu_isa(fn, isa: str):
    """fn with the CPU loops forced to instruction set ``isa`` (a row per variant)."""
    def run(*args, **kwargs):
        with forced_cpu_isa(isa):
            return fn(*args, **kwargs)
    return run


def _cpu_isa_variants(impls):
    """dcn_det rows for the CPU loops' other instruction sets (the selected one is the
    plain dcn_det row): same inputs, same checks."""
    return [(f"{name} [{isa}]", _with_cpu_isa(fn, isa), False, checked)
            for name, fn, _, checked in impls if name == "dcn_det"
            for isa in available_cpu_isas() if isa != cpu_isa()]


ONE_THREAD = "[1 thread]"


@contextlib.contextmanager
def _num_threads(threads: Optional[int]) -> Iterator[None]:
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


def _one_thread_variants(impls):
    """F.conv2d and dcn_det again on one thread (forward and backward), for the
    thread-scaling lines under the table; none when torch already runs one thread."""
    if torch.get_num_threads() < 2:
        return []
    return [(f"{name} {ONE_THREAD}", fn, False, checked, 1)
            for name, fn, _, checked in impls if name in ("F.conv2d", "dcn_det")]


def thread_scaling(rows: Sequence[Row]) -> List[str]:
    """'case: impl 1 -> N threads: x fwd, y fwd+bwd' for each one-thread row."""
    lines = []
    threads = torch.get_num_threads()
    for row in rows:
        if not row.impl.endswith(ONE_THREAD):
            continue
        base = row.impl[: -len(ONE_THREAD)].strip()
        match = [r for r in rows if (r.group, r.case, r.device, r.dtype, r.impl) ==
                 (row.group, row.case, row.device, row.dtype, base)]
        if not match:
            continue
        speedups = [f"{one / many:.2f}x {name}" if one and many else f"n/a {name}"
                    for name, one, many in (("fwd", row.fwd_ms, match[0].fwd_ms),
                                            ("fwd+bwd", row.fwd_bwd_ms, match[0].fwd_bwd_ms))]
        lines.append(f"thread scaling {row.case} {row.device} {row.dtype}, {base} 1 -> {threads} threads: "
                     + ", ".join(speedups))
    return lines


def _dcn_inputs(shape: Tuple[int, int, int, int], device: str, seed: int) -> Dict[str, torch.Tensor]:
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(seed)  # same data on every device and run
    taps = 9  # 3x3, one offset group
    data = {
        "input": torch.randn(n, c, h, w, generator=gen),
        # offsets ~ N(0, 2): most samples land between pixels, some outside the map.
        "offset": torch.randn(n, 2 * taps, h, w, generator=gen) * 2,
        # weight scaled by 1/sqrt(fan_in) keeps outputs O(1), so absolute differences
        # are meaningful and float16 does not overflow.
        "weight": torch.randn(c, c, 3, 3, generator=gen) / (c * taps) ** 0.5,
        "bias": torch.randn(c, generator=gen),
        "mask": torch.randn(n, taps, h, w, generator=gen).sigmoid(),
    }
    return {name: t.to(device) for name, t in data.items()}


def _dtypes_for(device: str) -> List[torch.dtype]:
    # Half on CUDA only: it is where mixed-precision training runs; CPU half is not
    # a target.
    return [torch.float32, torch.float16] if device == "cuda" else [torch.float32]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def bench_deform_conv2d(settings: Settings) -> Iterator[Row]:
    group = "deform_conv2d"
    for device in settings.devices:
        for shape in settings.dcn_shapes:
            case = "x".join(map(str, shape))
            data32 = _dcn_inputs(shape, device, settings.seed)
            grad32 = torch.randn(
                shape, generator=torch.Generator().manual_seed(settings.seed + 1)
            ).to(device)
            for dtype in _dtypes_for(device):
                dname = _dtype_name(dtype)
                data = {name: t.to(dtype) for name, t in data32.items()}
                grad_output = grad32.to(dtype)

                # Reference for the checks: torchvision in float32 on exactly the
                # values the timed rows see (float16 rounded, then widened). Untimed.
                progress(f"[{group} {case} {device} {dname}] reference (torchvision float32)")
                ref_output = ref_grads = None
                try:
                    leaves = {k: t.float().detach().requires_grad_() for k, t in data.items()}
                    ref_out = _dcn_torchvision(**leaves)
                    ref_out.backward(grad_output.float())
                    ref_output = ref_out.detach()
                    ref_grads = {k: t.grad for k, t in leaves.items()}
                    del leaves, ref_out
                except Exception as exc:  # noqa: BLE001
                    progress(f"  reference failed, no checks: {short_error(exc)}")

                impls = [(*impl, None) for impl in DCN_IMPLS]
                if device == "cpu":
                    impls += [(*impl, None) for impl in _cpu_isa_variants(DCN_IMPLS)]
                    impls += _one_thread_variants(DCN_IMPLS)
                for impl, fn, anchor, checked, threads in impls:
                    label = f"[{group} {case} {device} {dname}] {impl}"
                    with _num_threads(threads):
                        fwd_ms, fwd_bwd_ms, out, grads, note = measure_fwd_and_fwd_bwd(
                            fn, data, grad_output, device,
                            settings.warmup[device], settings.repeats[device], label,
                        )
                    row = Row(group, case, impl, device, dname, fwd_ms, fwd_bwd_ms, anchor=anchor, note=note)
                    if checked and ref_output is not None:
                        if impl == "torchvision" and dtype == torch.float32:
                            row.is_reference = True  # it is the reference itself
                        else:
                            row.check_fwd, row.check_grad = compare(out, grads, ref_output, ref_grads)
                    del out, grads
                    yield row
            del data32, grad32
            if device == "cuda":
                torch.cuda.empty_cache()


# --------------------------------------------------- group: deform_psroi_pool

# The settings: R-FCN's class-score pooling (k = 7, 80 classes + background,
# stride-16 map of an ~600x800 image, 300 proposals) and Faster R-CNN's deformable RoI
# pooling (256 channels, 512 RoIs, 7x7). (name, N, H, W, output_dim, group_size, rois)
PSROI_CASES = [
    ("R-FCN", 1, 38, 50, 81, 7, 300),
    ("Faster R-CNN", 2, 50, 68, 256, 1, 512),
]
PSROI_QUICK_CASES = [("R-FCN", 1, 9, 12, 3, 3, 8), ("Faster R-CNN", 2, 9, 12, 8, 1, 8)]
PSROI_SCALE = 1.0 / 16
PSROI_SAMPLES = 4  # per bin side, for ours and (sampling_ratio) for torchvision


def _psroi_inputs(case, device: str, seed: int) -> Dict[str, torch.Tensor]:
    _, n, h, w, output_dim, k, num_rois = case
    gen = torch.Generator().manual_seed(seed)
    img_h, img_w = h / PSROI_SCALE, w / PSROI_SCALE
    x1 = torch.rand(num_rois, generator=gen) * img_w * 0.8
    y1 = torch.rand(num_rois, generator=gen) * img_h * 0.8
    bw = 32 + torch.rand(num_rois, generator=gen) * img_w * 0.5
    bh = 32 + torch.rand(num_rois, generator=gen) * img_h * 0.5
    index = torch.randint(n, (num_rois,), generator=gen).float()
    rois = torch.stack([index, x1, y1, (x1 + bw).clamp(max=img_w - 1), (y1 + bh).clamp(max=img_h - 1)], dim=1)
    data = {
        "input": torch.randn(n, output_dim * k * k, h, w, generator=gen),
        "rois": rois,
        # Class-specific offsets for R-FCN (2 per class), one field for Faster R-CNN.
        "offset": torch.randn(num_rois, 2 * (output_dim if k > 1 else 1), k if k > 1 else 7, k if k > 1 else 7, generator=gen),
    }
    return {name: t.to(device) for name, t in data.items()}


def _psroi_impls(case):
    _, _, _, _, output_dim, k, _ = case
    pooled = k if k > 1 else 7

    def torchvision_anchor(input, rois, offset):  # noqa: A002
        if k > 1:
            return torchvision.ops.ps_roi_align(input, rois, pooled, PSROI_SCALE, PSROI_SAMPLES)
        return torchvision.ops.roi_align(input, rois, pooled, PSROI_SCALE, PSROI_SAMPLES)

    def ours_plain(input, rois, offset):  # noqa: A002
        return deform_psroi_pool(input, rois, None, PSROI_SCALE, output_dim, k, pooled, pooled, PSROI_SAMPLES, no_trans=True)

    def ours_deformable(input, rois, offset):  # noqa: A002
        return deform_psroi_pool(input, rois, offset, PSROI_SCALE, output_dim, k, pooled, pooled, PSROI_SAMPLES, 0.1)

    anchor = "torchvision ps_roi_align" if k > 1 else "torchvision roi_align"
    return [(anchor, torchvision_anchor, True), ("dcn_det no_trans", ours_plain, False), ("dcn_det deformable", ours_deformable, False)]


def bench_deform_psroi_pool(settings: Settings) -> Iterator[Row]:
    """No correctness column here: torchvision samples bins at other points (i + 0.5),
    so it is a speed anchor only; tests/ops/test_deform_psroi_pool.py checks values."""
    group = "deform_psroi_pool"
    for device in settings.devices:
        for case in PSROI_QUICK_CASES if settings.quick else PSROI_CASES:
            name = f"{case[0]} {case[1]}x{case[4] * case[5] ** 2}x{case[2]}x{case[3]}, {case[6]} RoIs"
            data = _psroi_inputs(case, device, settings.seed)
            pooled = case[5] if case[5] > 1 else 7
            grad_output = torch.randn(case[6], case[4], pooled, pooled, generator=torch.Generator().manual_seed(settings.seed + 1)).to(device)
            impls = _psroi_impls(case)
            if device == "cpu":  # the group_size-1 loops are compiled per instruction set
                impls += [(f"{impl_name} [{isa}]", _with_cpu_isa(fn, isa), False) for impl_name, fn, _ in impls[1:]
                          for isa in available_cpu_isas() if isa != cpu_isa() and case[5] == 1]
            for impl, fn, anchor in impls:
                fwd_ms, fwd_bwd_ms, _, _, note = measure_fwd_and_fwd_bwd(
                    fn, data, grad_output, device, settings.warmup[device], settings.repeats[device], f"[{group} {name} {device}] {impl}"
                )
                yield Row(group, name, impl, device, "float32", fwd_ms, fwd_bwd_ms, anchor=anchor, note=note)


# ------------------------------------------------------------- group: model

# The in-model target: a Faster R-CNN R-50-FPN training iteration with
# deformable convolution in every 3x3 conv of res3-res5, against the plain model,
# same input and everything else. Small input (2 cores): one 320x448 image with 3
# boxes, random initial weights. The deformable models get the plain model's weights
# (their offset/mask convs start at zero, as in training), so the RPN proposes the
# same boxes and the heads cost the same: with independent random weights the
# proposals, and with them roi_align's adaptive sampling cost, differ from model to
# model by more than the deformable layers cost.
# Model families: (case name, rows (row label, config under configs/, is the anchor),
# with backbone / bf16 / onnxruntime rows). Each family's ratios are to its plain model.
MODEL_FAMILIES = [
    ("Faster R-CNN R-50-FPN", [
        ("plain R-50-FPN", "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml", True),
        ("dconv c3-c5 (DCNv1)", "COCO-Detection/faster_rcnn_R_50_FPN_dconv_c3-c5_1x.yaml", False),
        ("mdconv c3-c5 (DCNv2)", "COCO-Detection/faster_rcnn_R_50_FPN_mdconv_c3-c5_1x.yaml", False),
        ("mdconv c3-c5 + mdpool (DCNv2)", "COCO-Detection/faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml", False),
    ], True),
    ("R-FCN R-101", [
        ("plain R-FCN", "COCO-Detection/rfcn_R_101_1x.yaml", True),
        ("dconv c5 + dpsroi (DCNv1)", "COCO-Detection/rfcn_R_101_dconv_c5_dpsroi_1x.yaml", False),
        ("mdconv c3-c5 + mdpsroi (DCNv2)", "COCO-Detection/rfcn_R_101_mdconv_c3-c5_mdpsroi_1x.yaml", False),
    ], False),
]
MODEL_IMAGE = (320, 448)
MODEL_QUICK_IMAGE = (64, 96)


def _model_batch(device: str, seed: int, size: Tuple[int, int]):
    from detectron2.structures import Boxes, Instances

    gen = torch.Generator().manual_seed(seed)
    h, w = size
    image = (torch.rand(3, h, w, generator=gen) * 255).to(device)
    instances = Instances((h, w))
    instances.gt_boxes = Boxes(torch.tensor([[0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h],
                                             [0.4 * w, 0.3 * h, 0.9 * w, 0.8 * h],
                                             [0.2 * w, 0.5 * h, 0.4 * w, 0.9 * h]], device=device))
    instances.gt_classes = torch.tensor([1, 5, 17], device=device)
    return [{"image": image, "height": h, "width": w, "instances": instances}]


def _unit_modulation(model: torch.nn.Module) -> None:
    """DCNv2's modulation branches start at sigmoid(0) = 0.5, which scales the features,
    so a random-weight DCNv2 detector proposes other boxes than the plain one and its
    time moves with them (roi_align's samples grow with box size). A mask logit of 20
    (modulation 1 - 2e-9) with the zero offsets makes every DCNv2 model compute the plain
    model's function: the rows then differ only by the deformable layers' cost."""
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, "deform_modulated", False) and hasattr(module, "conv2_offset"):
                bias = module.conv2_offset.bias  # [offsets (2/3), mask logits (1/3)]
                bias[2 * bias.numel() // 3:] = 20.0
            if hasattr(module, "mask_fc"):  # mdpool: one logit per bin
                [layer for layer in module.mask_fc.modules() if isinstance(layer, torch.nn.Linear)][-1].bias.fill_(20.0)
            if getattr(module, "modulated", False) and hasattr(module, "conv_offset"):  # mdpsroi
                bias = module.conv_offset.bias
                bias[2 * bias.numel() // 3:] = 20.0


def bench_model(settings: Settings) -> Iterator[Row]:
    """fwd = inference of the model (eval mode); fwd+bwd = one training iteration
    (train mode: losses, then backward; no optimizer step). Backbone rows: forward of
    ResNet+FPN, and forward + backward of the sum of its outputs. A family's models are
    timed in turn, one call each per round (time_interleaved): timed one model after the
    other, a change of load between them moved a ratio by up to 0.2."""
    group = "model"
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
    size = MODEL_QUICK_IMAGE if settings.quick else MODEL_IMAGE
    image = f"1x3x{size[0]}x{size[1]}"
    try:
        from detectron2.modeling import build_model
        from detectron2.utils.events import EventStorage

        from dcn_det.engine import build_cfg
    except ImportError as exc:
        progress(f"[{group}] skipped: {short_error(exc)}")
        yield Row(group, f"{MODEL_FAMILIES[0][0]}, {image}", "all", "-", "float32",
                  note=f"needs detectron2 ({short_error(exc)})")
        return
    for device in settings.devices:
        batch = _model_batch(device, settings.seed, size)
        for family, members, backbone_rows in MODEL_FAMILIES:
            case = f"{family}, {image}"
            # The backbone alone: where the models differ (FPN family only).
            backbone_case = f"{family.split()[-1]} backbone only, {image}"
            models = {}
            shared = None  # the anchor's weights
            for impl, config, anchor in members:
                opts = ["MODEL.DEVICE", device, "MODEL.WEIGHTS", ""]
                torch.manual_seed(settings.seed)
                model = build_model(build_cfg(os.path.join(root, config), opts))
                if shared is None:
                    shared = {k: v.clone() for k, v in model.state_dict().items()}
                else:
                    # The deformable models get the plain model's weights; their own
                    # offset/mask branches stay zero-initialised (offsets 0).
                    missing, unexpected = model.load_state_dict(shared, strict=False)
                    assert not unexpected and all("offset" in k or "mask_fc" in k for k in missing), (
                        missing, unexpected)
                _unit_modulation(model)
                models[impl] = model
            images = next(iter(models.values())).preprocess_image(batch).tensor

            def inference(model) -> None:
                model.eval()
                with torch.no_grad():
                    model(batch)

            def training_iteration(model) -> None:
                model.train()
                model.zero_grad(set_to_none=True)
                with EventStorage():  # the training losses log into one
                    sum(model(batch).values()).backward()

            def backbone_forward(model) -> None:
                with torch.no_grad():
                    model.backbone(images)

            def backbone_training(model) -> None:
                model.zero_grad(set_to_none=True)
                sum(f.sum() for f in model.backbone(images).values()).backward()

            # Every measurement takes the family's models in turn (time_interleaved).
            measurements = [(case, "float32", "fwd", inference), (case, "float32", "fwd+bwd", training_iteration)]
            if backbone_rows:
                measurements += [(backbone_case, "float32", "fwd", backbone_forward),
                                 (backbone_case, "float32", "fwd+bwd", backbone_training)]
                if device == "cpu":
                    # The backbone under bfloat16 autocast (bf16 products in our forward,
                    # oneDNN's bf16 convs): is it faster than float32 on this CPU?
                    measurements += [(backbone_case, "bf16 autocast", "fwd", backbone_forward),
                                     (backbone_case, "bf16 autocast", "fwd+bwd", backbone_training)]
            results = {}
            for row_case, dtype, name, step in measurements:
                progress(f"  [{group} {device}] {family} {row_case.split(',')[0]} {dtype} {name}: "
                         f"{len(models)} models in turn ...")
                steps = {impl: (lambda model=model, step=step: step(model)) for impl, model in models.items()}
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16 autocast"):
                    timed = time_interleaved(steps, device, settings.warmup[device], settings.repeats[device])
                for impl, (median, runs) in timed.items():
                    progress(f"    {impl}: median {_fmt_ms(median)} ms{_spread(runs)}")
                    results[(row_case, dtype, impl, name)] = median
            for impl, _, anchor in members:
                for row_case, dtype in dict.fromkeys((c, d) for c, d, _, _ in measurements):
                    yield Row(group, row_case, impl, device, dtype, results[(row_case, dtype, impl, "fwd")],
                              results[(row_case, dtype, impl, "fwd+bwd")], anchor=anchor)
                if (device == "cpu" and backbone_rows and settings.onnxruntime
                        and (not settings.quick or impl == members[-1][0])):
                    yield from onnxruntime_rows(group, {"detector": case, "backbone": backbone_case}, impl,
                                                models[impl], batch[0]["image"], settings)
            del models


def onnxruntime_rows(group: str, cases: Dict[str, str], impl: str, model, image: torch.Tensor,
                     settings: Settings) -> Iterator[Row]:
    """The same model exported to ONNX (dcn_det.onnx; whole detector through TracingAdapter and
    the TorchScript-based exporter, backbone through the dynamo exporter) and run by onnxruntime
    on the CPU with torch's thread count: inference only. The backbone row's check column is the
    largest |feature difference| against PyTorch on the timed image. --quick: DCNv2 only."""
    import tempfile

    label = f"{impl} onnxruntime"
    try:
        import onnxruntime

        import dcn_det.onnx
        from dcn_det.modeling.onnx_export import BackboneForExport, detector_for_export
    except ImportError as exc:
        yield Row(group, cases["detector"], label, "cpu", "float32", note=f"needs onnx, onnxruntime, onnxscript ({short_error(exc)})")
        return
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # like for like with the PyTorch rows
    model.eval()
    parts = (("detector", lambda: detector_for_export(model, image), False),
             ("backbone", lambda: BackboneForExport(model).eval(), True))
    with tempfile.TemporaryDirectory() as tmp:
        for part, make, dynamo in parts:
            path = os.path.join(tmp, part + ".onnx")
            progress(f"  [{group} cpu] {label} {part}: exporting ...")
            try:
                module = make()
                with torch.no_grad():
                    dcn_det.onnx.export(module, (image,), path, dynamo=dynamo)
                session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001  (report it in the table and go on)
                progress(f"  [{group} cpu] {label} {part}: export failed ({short_error(exc)})")
                yield Row(group, cases[part], label, "cpu", "float32", note=f"export failed: {short_error(exc)}")
                continue
            feed = {session.get_inputs()[0].name: image.numpy()}
            last: Dict[str, List] = {}
            fwd_ms, runs = time_ms(lambda: last.update(out=session.run(None, feed)), "cpu",
                                   settings.warmup["cpu"], settings.repeats["cpu"])
            progress(f"  [{group} cpu] {label} {part} fwd: median {_fmt_ms(fwd_ms)} ms{_spread(runs)}")
            row = Row(group, cases[part], label, "cpu", "float32", fwd_ms, None, note="onnxruntime: inference only")
            if part == "backbone":
                with torch.no_grad():
                    ref = module(image)
                row.check_fwd = max(float((torch.from_numpy(a) - b).abs().max()) for a, b in zip(last["out"], ref))
            yield row


# Registry of benchmark groups, run in this order. Add new groups here.
GROUPS: Dict[str, Callable[[Settings], Iterator[Row]]] = {
    "deform_conv2d": bench_deform_conv2d,
    "deform_psroi_pool": bench_deform_psroi_pool,
    "model": bench_model,
}


# ------------------------------------------------------------------------ output


def _fmt_ms(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _fmt_ratio(value: Optional[float], anchor: Optional[float]) -> str:
    if value is None or not anchor:
        return "n/a"
    return f"{value / anchor:.2f}x"


def _fmt_check(value: Optional[float], row: Row) -> str:
    if row.is_reference:
        return "(ref)"
    return "" if value is None else f"{value:.1e}"


TABLE_COLUMNS = [  # (header, right-aligned?)
    ("group", False), ("case (NxCxHxW)", False), ("device", False), ("dtype", False), ("impl", False),
    ("fwd ms", True), ("fwd ratio", True), ("fwd+bwd ms", True), ("fwd+bwd ratio", True),
    ("fwd Δ (abs)", True), ("grad Δ (rel)", True),
]


def table_cells(rows: Sequence[Row]) -> List[List[str]]:
    """Rows as text cells; ratios relative to the anchor row of the same case,
    device and dtype (left "n/a" when the anchor failed)."""
    anchors = {(r.group, r.case, r.device, r.dtype): r for r in rows if r.anchor}
    cells = []
    for r in rows:
        a = anchors.get((r.group, r.case, r.device, r.dtype))
        cells.append([
            r.group, r.case, r.device, r.dtype, r.impl,
            _fmt_ms(r.fwd_ms), _fmt_ratio(r.fwd_ms, a.fwd_ms if a else None),
            _fmt_ms(r.fwd_bwd_ms), _fmt_ratio(r.fwd_bwd_ms, a.fwd_bwd_ms if a else None),
            _fmt_check(r.check_fwd, r), _fmt_check(r.check_grad, r),
        ])
    return cells


def format_table(rows: Sequence[Row], markdown: bool) -> str:
    headers = [h for h, _ in TABLE_COLUMNS]
    right = [r for _, r in TABLE_COLUMNS]
    cells = table_cells(rows)
    if markdown:
        def md(values: Sequence[str]) -> str:
            return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

        lines = [md(headers), "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
        lines += [md(c) for c in cells]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(headers, *cells)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    previous = None
    for row, c in zip(rows, cells):
        key = (row.group, row.case, row.device, row.dtype)
        if previous is not None and key != previous:
            out.append("")  # blank line between cases
        previous = key
        out.append(line(c))
    return "\n".join(out)


def legend(rows: Sequence[Row]) -> List[str]:
    anchors = sorted({(r.group, r.impl) for r in rows if r.anchor})
    notes = [f"{r.impl} {r.case} {r.device} {r.dtype}: {r.note}" for r in rows if r.note]
    lines = [
        "times: median wall time per call in ms; fwd = forward without autograd, "
        "fwd+bwd = forward then backward of a fixed random gradient, all inputs requiring grad",
        "ratio = time / time of the case's anchor ("
        + ", ".join(f"{g}: {impl}" for g, impl in anchors) + "), same device and dtype, same run",
        "fwd Δ (abs) = max abs difference of the forward output vs torchvision float32 on the same inputs; "
        "grad Δ (rel) = max over input/offset/mask/weight/bias grads of max abs difference / max abs "
        "reference grad; (ref) = the reference itself",
    ]
    if any(r.impl.endswith("onnxruntime") for r in rows):
        lines.append("model group, onnxruntime rows: the same model and weights exported with dcn_det.onnx "
                     "(whole detector: TracingAdapter + TorchScript-based exporter, without the final rescaling "
                     "to the original image size; backbone: dynamo exporter), onnxruntime CPU with torch's thread "
                     "count; fwd Δ of the backbone row = max abs feature difference vs PyTorch")
    lines += [f"n/a: {n}" for n in notes]
    return lines


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(settings: Settings, argv: Sequence[str]) -> List[Tuple[str, str]]:
    try:
        nproc = len(os.sched_getaffinity(0))  # what `nproc` prints
    except AttributeError:
        nproc = os.cpu_count() or 0
    info = [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("command", " ".join(["python", "tools/benchmark_ops.py", *argv])),
        ("cpu", f"{cpu_model()} ({platform.machine()}), nproc {nproc}"),
        ("torch", f"{torch.__version__}, torchvision {torchvision.__version__}, "
                  f"threads {torch.get_num_threads()}"),
        ("dcn_det CPU loops", f"{cpu_isa()} (of {', '.join(available_cpu_isas())}; rows 'dcn_det [isa]' force another)"),
    ]
    if "cuda" in settings.devices:
        info.append(("gpu", f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda}, "
                            f"cuDNN {torch.backends.cudnn.version()}, TF32 off, cudnn.benchmark on)"))
    info.append(("repeats", ", ".join(f"{d}: {settings.warmup[d]} warm-up + {settings.repeats[d]} timed (median)"
                                      for d in settings.devices)))
    if hasattr(os, "getloadavg"):
        info.append(("load average at start", "%.2f %.2f %.2f" % os.getloadavg()))
    return info


# -------------------------------------------------------------------------- CLI


def parse_shape(text: str) -> Tuple[int, int, int, int]:
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        parts = ()
    if len(parts) != 4 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"shape must be NxCxHxW with positive ints, got {text!r}")
    return parts  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark dcn_det operators vs torchvision and F.conv2d (medians, ratios in one run).",
    )
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="all (default) = CPU, plus CUDA when a GPU is available")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per measurement (default: 10 on CPU, 50 on CUDA; 1 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed runs first (default: 2 on CPU, 10 on CUDA; 1 with --quick)")
    parser.add_argument("--shapes", default=None,
                        help="comma-separated NxCxHxW for the deform_conv2d group (default: "
                             + ",".join("x".join(map(str, s)) for s in DCN_SHAPES) + ")")
    parser.add_argument("--groups", default=",".join(GROUPS),
                        help="comma-separated benchmark groups (default: all), from: " + ", ".join(GROUPS))
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes and 1 repeat: a smoke test, not a measurement")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch.get_num_threads())")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    parser.add_argument("--no-onnxruntime", action="store_true",
                        help="model group: skip the onnxruntime rows (exported models; needs onnx, onnxruntime, onnxscript)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.device == "all":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    elif args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    else:
        devices = [args.device]

    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {list(GROUPS)}")

    if args.shapes:
        try:
            shapes = [parse_shape(s) for s in args.shapes.split(",") if s.strip()]
        except argparse.ArgumentTypeError as exc:
            parser.error(str(exc))
    else:
        shapes = DCN_QUICK_SHAPES if args.quick else DCN_SHAPES

    defaults = {"cpu": (10, 2), "cuda": (50, 10)}  # (repeats, warmup)
    if args.quick:
        defaults = {d: (1, 1) for d in defaults}
    for name in ("repeats", "warmup"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "repeats" else 0):
            parser.error(f"--{name} must be >= {1 if name == 'repeats' else 0}")
    settings = Settings(
        devices=devices,
        repeats={d: args.repeats if args.repeats is not None else defaults[d][0] for d in devices},
        warmup={d: args.warmup if args.warmup is not None else defaults[d][1] for d in devices},
        dcn_shapes=shapes,
        seed=args.seed,
        quick=args.quick,
        onnxruntime=not args.no_onnxruntime,
    )

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if "cuda" in devices:
        # Full float32 everywhere: by default cuDNN convolutions use TF32 while our
        # kernels' matmuls do not, which would make the F.conv2d floor incomparable.
        try:
            torch.backends.cudnn.conv.fp32_precision = "ieee"
            torch.backends.cuda.matmul.fp32_precision = "ieee"
        except AttributeError:  # older torch
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        # Let cuDNN pick its fastest algorithm in the warm-up: the floor should be the real floor.
        torch.backends.cudnn.benchmark = True

    info = environment(settings, argv)
    progress("\n".join(f"{k}: {v}" for k, v in info))
    start = time.perf_counter()
    rows: List[Row] = []
    for group in groups:
        rows.extend(GROUPS[group](settings))
    elapsed = time.perf_counter() - start
    info.append(("run time", f"{elapsed:.0f} s"))
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", "%.2f %.2f %.2f" % os.getloadavg()))

    if args.markdown:
        print("\n".join(f"- {k}: {v}" for k, v in info))
        print()
        print(format_table(rows, markdown=True))
        print()
        print("\n".join(f"- {line}" for line in legend(rows) + thread_scaling(rows)))
    else:
        print("\n".join(f"{k}: {v}" for k, v in info))
        print()
        print(format_table(rows, markdown=False))
        print()
        print("\n".join(legend(rows) + thread_scaling(rows)))
    if args.quick:
        print("\n(--quick: tiny shapes, 1 repeat; a smoke test, not a measurement)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
