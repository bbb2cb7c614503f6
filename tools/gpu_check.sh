#!/usr/bin/env bash
# One-call GPU acceptance run: tools/gpu_check.sh OUT_DIR
#
# On a machine with an NVIDIA GPU (e.g. the lent H100/H200: python3 with torch 2.11 + CUDA 13,
# nvcc, no detectron2), from the repository root, in one command (about 5-8 minutes):
#   1. build   the extension in place against the torch it finds (CUDA kernels when nvcc is
#              there; TORCH_CUDA_ARCH_LIST defaults to the visible GPU's architecture);
#   2. tests   the operator and layer tests (pytest tests/ops tests/layers): CUDA, host device
#              path and CPU variants;
#   3. compare tools/gpu_compare.py: every CUDA result (outputs and gradients, float32/64,
#              deterministic mode off and on) against the CPU kernel, next to the host
#              device path's;
#   4. memcheck / racecheck  compute-sanitizer on a small forward+backward of both ops;
#   5. bench   tools/benchmark_ops.py --device cuda --groups deform_conv2d,deform_psroi_pool;
# and writes OUT_DIR/summary.md and OUT_DIR/summary.json (each step: passed / failed /
# skipped and why, seconds), plus each step's log. Steps that need a GPU are skipped,
# with the reason, where there is none, so the script runs anywhere (CI tests that).
# Exit status: 1 if a step failed, else 0.
#
# Environment: PYTHON (default: .venv/bin/python if present, else python3), MAX_JOBS,
# SKIP_BUILD=1 (use the library already built), GPU_CHECK_QUICK=1 (a short test and
# benchmark selection, for the smoke test).
# detectron2 is not needed (the model tests are not run). To run those as well, carry a
# detectron2 wheel (tools/install_detectron2.sh builds one) and pip install it first.
# On the lent GPU machine (the device tool): python3 there may lack pytest, expecttest or
# torchvision (the benchmark's reference); bring them as cp312 wheels in an ignored .whl/
# folder (`pip download --no-deps --only-binary=:all: --python-version 3.12 ...`), carry it,
# and start the command with
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
#   export PYTHONPATH=/tmp/site; PYTHON=python3 tools/gpu_check.sh $OUT/gpu_check
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: tools/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
STEPS="$OUT/steps.tsv"
: >"$STEPS"
failed=0

# record NAME STATUS SECONDS NOTE
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$STEPS"; echo "=== [gpu_check] $1: $2 ($3 s) $4"; }

# step NAME COMMAND...: runs it with its log in OUT/NAME.log
step() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== [gpu_check] $name: $*"
  if "$@" >"$OUT/$name.log" 2>&1; then
    record "$name" passed $((SECONDS - t0)) "log: $name.log"
  else
    record "$name" failed $((SECONDS - t0)) "exit $?; log: $name.log (last lines below)"
    tail -15 "$OUT/$name.log"
    failed=1
  fi
}

has_gpu=$("$PYTHON" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
gpu_name=$("$PYTHON" -c "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')" 2>/dev/null || echo none)
torch_version=$("$PYTHON" -c "import torch; print(torch.__version__)" 2>/dev/null || echo "not importable")
no_gpu="no CUDA GPU visible to torch ($torch_version)"
echo "=== [gpu_check] python $PYTHON, torch $torch_version, GPU: $gpu_name"

# 1. build
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  record build skipped 0 "SKIP_BUILD=1: using the library already built"
else
  force_cuda=0
  command -v nvcc >/dev/null && force_cuda=1
  [ -x /usr/local/cuda/bin/nvcc ] && force_cuda=1
  step build env FORCE_CUDA=$force_cuda MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PYTHON" setup.py build_ext --inplace
fi
has_cuda_kernels=$("$PYTHON" -c "from dcn_det.ops._extension import has_cuda_kernels as h; print(int(h()))" 2>/dev/null || echo 0)
cuda_ready=$((has_gpu && has_cuda_kernels))
why_not="$no_gpu"
[ "$has_gpu" = 1 ] && [ "$has_cuda_kernels" = 0 ] && why_not="dcn_det was built without its CUDA kernels (no nvcc?)"

# 2. tests (the CUDA variants skip themselves without a GPU, and say so in the log)
if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
  step tests "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/ops/test_deform_conv.py -k "gradcheck or deterministic"
else
  step tests "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/ops tests/layers
fi
grep -E "passed|failed" "$OUT/tests.log" | tail -1 >"$OUT/tests.summary" || true

# 3. comparison CUDA vs host device path vs CPU kernel (without a GPU: device path vs CPU)
step compare "$PYTHON" tools/gpu_compare.py --json "$OUT/compare.json"
[ "$cuda_ready" = 1 ] || record compare-cuda skipped 0 "$why_not (compare ran the host device path only)"

# 4. compute-sanitizer
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
for tool in memcheck racecheck; do
  if [ "$cuda_ready" != 1 ]; then
    record "$tool" skipped 0 "$why_not"
  elif [ -z "$sanitizer" ]; then
    record "$tool" skipped 0 "compute-sanitizer not found"
  else
    step "$tool" "$sanitizer" --tool "$tool" --error-exitcode 9 "$PYTHON" tools/gpu_compare.py --only cuda --small
  fi
done

# 5. CUDA benchmark of the operators
if [ "$cuda_ready" != 1 ]; then
  record bench skipped 0 "$why_not"
elif ! "$PYTHON" -c "import torchvision" 2>/dev/null; then
  record bench skipped 0 "torchvision is not installed (the benchmark's reference rows need it)"
else
  quick=()
  [ "${GPU_CHECK_QUICK:-0}" = 1 ] && quick=(--quick)
  step bench "$PYTHON" tools/benchmark_ops.py --device cuda --groups deform_conv2d,deform_psroi_pool --markdown "${quick[@]}"
fi

"$PYTHON" - "$OUT" "$gpu_name" "$torch_version" <<'PYEOF'
import json, os, sys, time
out, gpu, torch_version = sys.argv[1:4]
steps = [dict(zip(("step", "status", "seconds", "note"), line.rstrip("\n").split("\t")))
         for line in open(os.path.join(out, "steps.tsv")) if line.strip()]
tests = open(os.path.join(out, "tests.summary")).read().strip() if os.path.exists(os.path.join(out, "tests.summary")) else ""
summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "gpu": gpu, "torch": torch_version,
           "tests": tests, "steps": steps}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
lines = [f"# GPU check, {summary['date']}", "", f"GPU: {gpu}; torch {torch_version}; tests: {tests or 'n/a'}", "",
         "| step | status | seconds | note |", "|---|---|---|---|"]
lines += [f"| {s['step']} | {s['status']} | {s['seconds']} | {s['note']} |" for s in steps]
for name in ("compare", "bench"):
    path = os.path.join(out, f"{name}.log")
    if os.path.exists(path) and any(s["step"] == name and s["status"] != "skipped" for s in steps):
        table = [l.rstrip() for l in open(path) if l.startswith("|")]
        if table:
            lines += ["", f"## {name}", ""] + table
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines[:6 + len(steps)]))
PYEOF
echo "=== [gpu_check] summary: $OUT/summary.md"
exit $failed
