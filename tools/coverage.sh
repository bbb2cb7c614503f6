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
#      least MIN_COMMON_PERCENT (default 95) % of its lines executed.
#
# Environment: PYTHON (default .venv/bin/python), MAX_JOBS, PYTEST_ARGS (e.g. "-x"),
# MIN_COMMON_PERCENT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=build/coverage
MIN=${MIN_COMMON_PERCENT:-95}
CSRC=dcn_det/ops/csrc

"$PY" -m gcovr --version >/dev/null 2>&1 || "$PY" -m pip install -q gcovr
echo "=== [coverage] building the instrumented CPU extension in $OUT"
lib=$(PYTHON="$PY" tools/build_variant.sh "$OUT" "-O0 --coverage" "--coverage")

echo "=== [coverage] running tests/ops and tests/layers against $lib"
DCN_DET_EXTENSION="$lib" "$PY" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} tests/ops tests/layers

echo "=== [coverage] line coverage of $CSRC/common/ and $CSRC/cpu/"
# Headers are compiled into several translation units and templates into several
# instances: --merge-lines counts each source line once (executed by any of them).
"$PY" -m gcovr --root . --object-directory "$OUT/obj" \
  --filter "$CSRC/common/" --filter "$CSRC/cpu/" --merge-lines \
  --txt "$OUT/coverage.txt" --json-summary "$OUT/coverage.json" --json-summary-pretty \
  --print-summary >/dev/null
cat "$OUT/coverage.txt"
"$PY" - "$OUT/coverage.json" "$MIN" <<'PYEOF'
import json, sys
summary, minimum = json.load(open(sys.argv[1])), float(sys.argv[2])
lines = sum(f["line_total"] for f in summary["files"] if "/common/" in f["filename"])
covered = sum(f["line_covered"] for f in summary["files"] if "/common/" in f["filename"])
percent = 100.0 * covered / max(lines, 1)
print(f"common/: {covered}/{lines} lines executed = {percent:.1f} % (required: {minimum:.0f} %)")
sys.exit(0 if percent >= minimum else 1)
PYEOF
