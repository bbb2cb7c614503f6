#!/usr/bin/env python
"""Compare dcn_det's operators across their implementations on fresh random cases:

* ``cpu``          the CPU kernels (csrc/cpu/);
* ``device_path``  the device (CUDA) algorithm executed on the host (csrc/cpu/device_path.h);
* ``cuda``         the CUDA kernels, where a GPU and the CUDA build are present.

For every case: the forward output and every gradient (input, offset, mask, weight, bias
for deform_conv2d; input, offset for deform_psroi_pool), in float64 and float32, with
``torch.use_deterministic_algorithms`` off (atomic scatters) and on (owner-thread
kernels). Each implementation is compared with the CPU kernel: the largest absolute
difference, relative to the largest magnitude of the CPU result. Prints a table, writes
it as JSON with ``--json``, and exits 1 if any difference is over the tolerance.

    python tools/gpu_compare.py --json out.json          # everything available here
    python tools/gpu_compare.py --small --only cuda      # one small case per op, CUDA only
                                                         # (under compute-sanitizer)
"""
import argparse
import json
import math
import sys

import torch

from dcn_det.ops import deform_conv2d, deform_psroi_pool  # noqa: E402
from dcn_det.ops._device_path import device_path_calls, test_hooks  # noqa: E402
from dcn_det.ops._extension import has_cuda_kernels  # noqa: E402

TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}  # relative to the max |cpu result|

# (n, c, h, w, co, k, stride, padding, dilation, groups, offset_groups, mask, bias)
CONV_CASES = [
    (2, 8, 9, 11, 6, 3, 1, 1, 1, 1, 1, True, True),
    (3, 12, 10, 8, 12, 3, 2, 1, 2, 3, 2, True, False),
    (1, 16, 7, 7, 8, 2, 1, 0, 1, 2, 4, False, True),
    (4, 6, 12, 9, 6, 5, (2, 1), 2, 1, 1, 3, True, True),
]
# (n, h, w, output_dim, group_size, pooled_size, part_size, sample_per_part, classes, no_trans, rois)
PSROI_CASES = [
    (2, 14, 18, 6, 3, 3, 3, 2, 2, False, 9),   # R-FCN-like, class-specific offsets
    (2, 12, 16, 16, 1, 4, 4, 3, 1, False, 12),  # Faster R-CNN dpool-like, group_size 1
    (1, 10, 10, 4, 2, 4, 2, 2, 1, True, 7),     # no_trans, part_size 2
]


def conv_inputs(case, gen):
    n, c, h, w, co, k, stride, padding, dilation, groups, og, use_mask, use_bias = case
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ho = (h + 2 * padding - dilation * (k - 1) - 1) // sh + 1
    wo = (w + 2 * padding - dilation * (k - 1) - 1) // sw + 1
    f64 = dict(generator=gen, dtype=torch.float64)
    tensors = {
        "input": torch.randn(n, c, h, w, **f64),
        "offset": torch.randn(n, 2 * og * k * k, ho, wo, **f64) * 3,
        "weight": torch.randn(co, c // groups, k, k, **f64) / math.sqrt(c // groups * k * k),
        "mask": torch.rand(n, og * k * k, ho, wo, **f64) if use_mask else None,
        "bias": torch.randn(co, **f64) if use_bias else None,
    }
    kwargs = dict(stride=stride, padding=padding, dilation=dilation)
    return tensors, kwargs


def run_conv(tensors, kwargs, device, dtype):
    leaves = {k: None if v is None else v.to(device, dtype).requires_grad_() for k, v in tensors.items()}
    out = deform_conv2d(leaves["input"], leaves["offset"], leaves["weight"], leaves["bias"], mask=leaves["mask"], **kwargs)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    present = [name for name, t in leaves.items() if t is not None]
    grads = torch.autograd.grad(out, [leaves[p] for p in present], grad_out.to(device, dtype))
    return {"output": out.detach(), **{f"grad_{p}": g for p, g in zip(present, grads)}}


def psroi_inputs(case, gen):
    n, h, w, output_dim, group_size, pooled_size, part_size, spp, classes, no_trans, num_rois = case
    f64 = dict(generator=gen, dtype=torch.float64)
    scale = 1 / 4
    # Boxes in image coordinates (the image is 4x the map), some reaching past the border.
    x1 = torch.rand(num_rois, **f64) * (w / scale) * 0.9 - 4
    y1 = torch.rand(num_rois, **f64) * (h / scale) * 0.9 - 4
    bw = 4 + torch.rand(num_rois, **f64) * (w / scale) * 0.6
    bh = 4 + torch.rand(num_rois, **f64) * (h / scale) * 0.6
    batch = torch.randint(0, n, (num_rois,), generator=gen).double()
    tensors = {
        "input": torch.randn(n, output_dim * group_size * group_size, h, w, **f64),
        "rois": torch.stack([batch, x1, y1, x1 + bw, y1 + bh], 1),
        "offset": None if no_trans else torch.randn(num_rois, 2 * classes, part_size, part_size, **f64),
    }
    args = (scale, output_dim, group_size, pooled_size, part_size, spp, 0.2, no_trans)
    return tensors, args


def run_psroi(tensors, args, device, dtype):
    inp = tensors["input"].to(device, dtype).requires_grad_()
    rois = tensors["rois"].to(device, dtype)
    off = None if tensors["offset"] is None else tensors["offset"].to(device, dtype).requires_grad_()
    out = deform_psroi_pool(inp, rois, off, *args)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    leaves = [inp] + ([off] if off is not None else [])
    grads = torch.autograd.grad(out, leaves, grad_out.to(device, dtype))
    result = {"output": out.detach(), "grad_input": grads[0]}
    if off is not None:
        result["grad_offset"] = grads[1]
    return result


def run_on(impl, fn, tensors, args, dtype):
    """Results of ``fn`` on implementation ``impl``, moved to the CPU in float64."""
    if impl == "device_path":
        before = device_path_calls()
        with test_hooks(host_device_path=True, column_budget=0):
            result = fn(tensors, args, "cpu", dtype)
        assert device_path_calls() > before, "the host device path was not taken"
    else:
        with test_hooks(host_device_path=False):
            result = fn(tensors, args, impl, dtype)
    return {k: v.detach().to("cpu", torch.float64) for k, v in result.items()}


def compare(results, reference):
    worst = 0.0
    for name, ref in reference.items():
        scale = max(ref.abs().max().item(), 1e-30) if ref.numel() else 1.0
        diff = (results[name] - ref).abs().max().item() / scale if ref.numel() else 0.0
        worst = max(worst, diff) if not math.isnan(diff) else float("inf")
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["cuda", "device_path"], default=None,
                        help="run one implementation only, with no comparison (for compute-sanitizer)")
    parser.add_argument("--small", action="store_true", help="the first case of each operator only")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cuda = torch.cuda.is_available() and has_cuda_kernels()
    impls = ["device_path"] + (["cuda"] if cuda else [])
    skipped = [] if cuda else ["cuda: " + ("no CUDA GPU" if not torch.cuda.is_available() else "dcn_det built without CUDA kernels")]
    ops = [("deform_conv2d", CONV_CASES, conv_inputs, run_conv), ("deform_psroi_pool", PSROI_CASES, psroi_inputs, run_psroi)]
    if args.only:
        if args.only == "cuda" and not cuda:
            print("gpu_compare: --only cuda, but " + skipped[0])
            return 2
        for name, cases, make, fn in ops:
            for i, case in enumerate(cases[:1] if args.small else cases):
                tensors, op_args = make(case, torch.Generator().manual_seed(args.seed + i))
                for dtype in (torch.float32, torch.float64):
                    run_on(args.only, fn, tensors, op_args, dtype)
        print(f"gpu_compare: ran {args.only} without errors")
        return 0

    rows = []
    previous = torch.are_deterministic_algorithms_enabled()
    try:
        for deterministic in (False, True):
            torch.use_deterministic_algorithms(deterministic)
            for name, cases, make, fn in ops:
                for i, case in enumerate(cases[:1] if args.small else cases):
                    tensors, op_args = make(case, torch.Generator().manual_seed(args.seed + i))
                    for dtype in (torch.float64, torch.float32):
                        reference = run_on("cpu", fn, tensors, op_args, dtype)
                        for impl in impls:
                            diff = compare(run_on(impl, fn, tensors, op_args, dtype), reference)
                            rows.append(dict(op=name, case=i, dtype=str(dtype).replace("torch.", ""),
                                             deterministic=deterministic, impl=impl, rel_diff=diff,
                                             tolerance=TOLERANCE[dtype], ok=diff <= TOLERANCE[dtype]))
    finally:
        torch.use_deterministic_algorithms(previous)

    print("| op | case | dtype | deterministic | vs cpu kernel | max rel diff | ok |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['op']} | {r['case']} | {r['dtype']} | {r['deterministic']} | {r['impl']} | {r['rel_diff']:.2e} | {'yes' if r['ok'] else 'NO'} |")
    for s in skipped:
        print(f"skipped: {s}")
    failed = [r for r in rows if not r["ok"]]
    print(f"gpu_compare: {len(rows) - len(failed)} rows within tolerance, {len(failed)} over")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "skipped": skipped, "torch": torch.__version__,
                       "device": torch.cuda.get_device_name() if cuda else "cpu"}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
