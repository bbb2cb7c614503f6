#!/usr/bin/env bash
# Build a CPU-only variant of dcn_det._C with extra compiler/linker flags into its own
# folder, leaving the normal build (dcn_det/_C*.so) untouched; print the library's path.
#   tools/build_variant.sh OUT_DIR "CXX FLAGS" "LINK FLAGS"
# Used by tools/coverage.sh (gcov) and tools/sanitize.sh (ASan + UBSan); load the result
# with DCN_DET_EXTENSION=PATH. Environment: PYTHON (default .venv/bin/python), MAX_JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tools/build_variant.sh OUT_DIR CXX_FLAGS LINK_FLAGS}
rm -rf "$out"
mkdir -p "$out"
FORCE_CUDA=0 DCN_CXX_FLAGS="$2" DCN_LINK_FLAGS="$3" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
  "${PYTHON:-.venv/bin/python}" setup.py -q build_ext --build-temp "$out/obj" --build-lib "$out/lib" \
  >"$out/build.log" 2>&1 || { tail -50 "$out/build.log" >&2; exit 1; }
ls "$out"/lib/dcn_det/_C*.so
