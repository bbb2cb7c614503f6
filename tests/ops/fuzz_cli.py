#!/usr/bin/env python
"""Fuzz dcn_det's operators: N random calls of each (forward + backward), each either
rejected with an error naming the argument or matching the reference implementation
(tests/ops/fuzz.py says what is drawn and checked).

    python -m tests.ops.fuzz_cli --count 10000 --seed 7 [--op deform_conv2d] [--device-path]
Exit status 1 if any call failed; the failing calls are printed with their seeds' draw.
"""
import argparse
import contextlib
import collections
import sys
import time

from tests.ops.fuzz import CHECKS, fuzz


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="calls per operator (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--op", choices=sorted(CHECKS), action="append", help="only this operator (repeatable)")
    parser.add_argument("--device-path", action="store_true", help="run the device (CUDA) algorithm on the host")
    parser.add_argument("--cpu-isa", help="force the CPU loops' instruction set: baseline, avx2 or avx512 "
                        "(default: the one selected for this CPU)")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be >= 1")
    from dcn_det.ops import available_cpu_isas, cpu_isa
    from dcn_det.ops._cpu_isa import forced_cpu_isa
    from dcn_det.ops._device_path import test_hooks

    if args.cpu_isa and args.cpu_isa not in available_cpu_isas():
        parser.error(f"--cpu-isa must be one of {available_cpu_isas()} on this machine, got {args.cpu_isa!r}")
    start = time.time()
    isa = forced_cpu_isa(args.cpu_isa) if args.cpu_isa else contextlib.nullcontext()
    with test_hooks(host_device_path=args.device_path), isa:
        print(f"fuzz_ops: CPU loops: {cpu_isa()}")
        outcomes = fuzz(args.count, args.seed, tuple(args.op or sorted(CHECKS)))
    for op in args.op or sorted(CHECKS):
        kinds = collections.Counter(o.kind for o in outcomes if o.op == op)
        print(f"{op}: {kinds['match']} matched the reference, {kinds['rejected']} rejected naming the argument, "
              f"{kinds['FAIL']} failed")
    failures = [o for o in outcomes if o.kind == "FAIL"]
    for o in failures[:20]:
        print("FAIL", o.detail)
    print(f"fuzz_ops: {len(outcomes)} calls in {time.time() - start:.0f} s, seed {args.seed}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
