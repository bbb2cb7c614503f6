#!/usr/bin/env bash
# gcovr's line-coverage table for dcn_det/ops/csrc/common/ and cpu/ from an instrumented
# build's object folder, written to OUT/coverage.txt; fails when common/ is under
# MIN_COMMON_PERCENT (default 95) %. Called by tools/coverage.sh and, with
# WITH_COVERAGE=1, by tools/sanitize.sh (CI: one instrumented build does both).
#   tools/coverage_report.sh OUT   (OUT/obj holds the .gcno / .gcda files)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:?usage: tools/coverage_report.sh OUT}
MIN=${MIN_COMMON_PERCENT:-95}
CSRC=dcn_det/ops/csrc

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
