#!/usr/bin/env bash
# The operators under AddressSanitizer + UndefinedBehaviorSanitizer. `make sanitize` runs it.
#
#   1. builds the CPU extension with -fsanitize=address,undefined,float-cast-overflow
#      (-O1, no recovery: the first report fails the run) into build/sanitize/ -- the
#      normal build (dcn_det/_C*.so) is untouched;
#   2. runs the operator tests (tests/ops: CPU kernels and the host device path) and a
#      fuzzer batch (python -m tests.ops.fuzz_cli, FUZZ_COUNT calls per op, default 1000, on both)
#      against it, with the ASan runtime preloaded into python (LD_PRELOAD: the runtime
#      must come first) and leak detection off (CPython's own allocations are not leaks).
#      pytest runs with -s: a sanitizer report goes to file descriptor 2 and ends the
#      process at once, so pytest's capture would swallow it.
#
# float-cast-overflow is not part of -fsanitize=undefined in GCC; it is asked for
# explicitly, since a float-to-int conversion of an out-of-range coordinate would be
# undefined behaviour (the kernels convert only after range checks).
# WITH_COVERAGE=1 also instruments the build for gcov, runs tests/layers too and ends with
# the line-coverage table and check of tools/coverage.sh (tools/coverage_report.sh): CI
# does it this way, so that one build and one run of the operator tests give both.
# Environment: PYTHON (default .venv/bin/python), MAX_JOBS, PYTEST_ARGS, FUZZ_COUNT,
# WITH_COVERAGE, MIN_COMMON_PERCENT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=build/sanitize
SAN="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer"

TESTS="tests/ops"
if [ "${WITH_COVERAGE:-0}" = 1 ]; then
  SAN="$SAN --coverage"
  TESTS="tests/ops tests/layers"
  "$PY" -m gcovr --version >/dev/null 2>&1 || "$PY" -m pip install -q gcovr
fi

echo "=== [sanitize] building the CPU extension with $SAN in $OUT"
lib=$(PYTHON="$PY" tools/build_variant.sh "$OUT" "-O1 -g $SAN" "$SAN")
# A clean run only means something if the checks are in the library: its ASan reports,
# UBSan's float-to-int and bounds handlers.
nm -D "$lib" >"$OUT/symbols.txt"  # (not piped into grep -q: with pipefail, nm's SIGPIPE would fail it)
for symbol in __asan_report_load __ubsan_handle_float_cast_overflow __ubsan_handle_out_of_bounds; do
  grep -q "$symbol" "$OUT/symbols.txt" || { echo "sanitize: $lib has no $symbol: not instrumented"; exit 1; }
done

export DCN_DET_EXTENSION="$lib"
# libstdc++ too: python is not linked to it, and ASan must see it at start-up to intercept
# __cxa_throw (otherwise the first C++ exception stops the run with an ASan CHECK failure).
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
echo "=== [sanitize] $TESTS against $lib (LD_PRELOAD=$LD_PRELOAD)"
# shellcheck disable=SC2086  # TESTS and PYTEST_ARGS are lists
"$PY" -m pytest -q -s -p no:cacheprovider ${PYTEST_ARGS:-} $TESTS --deselect tests/ops/test_fuzz.py
echo "=== [sanitize] fuzzer, ${FUZZ_COUNT:-1000} calls per op, CPU kernels and host device path"
"$PY" -m tests.ops.fuzz_cli --count "${FUZZ_COUNT:-1000}" --seed 3
"$PY" -m tests.ops.fuzz_cli --count "${FUZZ_COUNT:-1000}" --seed 4 --device-path
echo "=== [sanitize] no sanitizer reports"
if [ "${WITH_COVERAGE:-0}" = 1 ]; then
  unset LD_PRELOAD
  PYTHON="$PY" tools/coverage_report.sh "$OUT"
fi
