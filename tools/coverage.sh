#!/usr/bin/env bash
# Line coverage of the operators' C++ (dcn_det/ops/csrc/common/ and cpu/) by the CPU test
# suite, the host device path included. `make coverage` runs it.
#
#   1. builds the CPU extension with gcov instrumentation (-O0 --coverage) into
#      build/coverage/ -- the normal build (dcn_det/_C*.so) is untouched;
#   2. runs the operator and layer tests against it (DCN_DET_EXTENSION points
#      dcn_det.ops at the instrumented library);
#   3. prints gcovr's per-file table (with the uncovered line numbers) for common/ and
#      cpu/, writes it to build/coverage/coverage.txt, and checks that common/ has at
#      least MIN_COMMON_PERCENT (default 95) % of its lines executed (tools/coverage_report.sh).
# CI gets the same table from the sanitizer build instead (make sanitize WITH_COVERAGE=1).
#
# Environment: PYTHON (default .venv/bin/python), MAX_JOBS, PYTEST_ARGS (e.g. "-x"),
# MIN_COMMON_PERCENT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=build/coverage

"$PY" -m gcovr --version >/dev/null 2>&1 || "$PY" -m pip install -q gcovr
echo "=== [coverage] building the instrumented CPU extension in $OUT"
lib=$(PYTHON="$PY" tools/build_variant.sh "$OUT" "-O0 --coverage" "--coverage")

echo "=== [coverage] running tests/ops and tests/layers against $lib"
DCN_DET_EXTENSION="$lib" "$PY" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} tests/ops tests/layers

PYTHON="$PY" tools/coverage_report.sh "$OUT"
