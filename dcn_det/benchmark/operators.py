"""The operator benchmark groups: deform_conv2d (vs torchvision and the dense F.conv2d floor,
with checks against torchvision float32) and deform_psroi_pool (vs torchvision's
ps_roi_align / roi_align, speed only)."""
from typing import Dict, Iterator, List, Tuple

import torch
import torch.nn.functional as F
import torchvision

from dcn_det.ops import deform_conv2d as dcn_deform_conv2d
from dcn_det.ops import available_cpu_isas, cpu_isa, deform_psroi_pool

from .timing import (ONE_THREAD, Row, Settings, compare, measure_fwd_and_fwd_bwd, num_threads, progress,
                     short_error, with_cpu_isa)


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


def _cpu_isa_variants(impls):
    """dcn_det rows for the CPU loops' other instruction sets (the selected one is the
    plain dcn_det row): same inputs, same checks."""
    return [(f"{name} [{isa}]", with_cpu_isa(fn, isa), False, checked)
            for name, fn, _, checked in impls if name == "dcn_det"
            for isa in available_cpu_isas() if isa != cpu_isa()]


def _one_thread_variants(impls):
    """F.conv2d and dcn_det again on one thread (forward and backward), for the
    thread-scaling lines under the table; none when torch already runs one thread."""
    if torch.get_num_threads() < 2:
        return []
    return [(f"{name} {ONE_THREAD}", fn, False, checked, 1)
            for name, fn, _, checked in impls if name in ("F.conv2d", "dcn_det")]


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
                    with num_threads(threads):
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
                impls += [(f"{impl_name} [{isa}]", with_cpu_isa(fn, isa), False) for impl_name, fn, _ in impls[1:]
                          for isa in available_cpu_isas() if isa != cpu_isa() and case[5] == 1]
            for impl, fn, anchor in impls:
                fwd_ms, fwd_bwd_ms, _, _, note = measure_fwd_and_fwd_bwd(
                    fn, data, grad_output, device, settings.warmup[device], settings.repeats[device], f"[{group} {name} {device}] {impl}"
                )
                yield Row(group, name, impl, device, "float32", fwd_ms, fwd_bwd_ms, anchor=anchor, note=note)
