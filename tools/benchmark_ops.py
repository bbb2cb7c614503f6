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

The benchmarks (groups, timing, table) live in dcn_det.benchmark; this file is their command
line. Progress goes to stderr, the table to stdout (so ``> table.md`` captures just the table).
"""
import argparse
import os
import sys
import time
from typing import List, Optional, Sequence, Tuple

import torch

try:
    import torchvision  # noqa: F401
except ImportError:  # the deformable rows need it; fail early with a clear message
    sys.exit("benchmark_ops.py needs torchvision (the reference implementation)")

from dcn_det.benchmark import (DCN_QUICK_SHAPES, DCN_SHAPES, GROUPS, Row, Settings, environment, print_report,
                               progress)


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

    print_report(info, rows, args.markdown)
    if args.quick:
        print("\n(--quick: tiny shapes, 1 repeat; a smoke test, not a measurement)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
