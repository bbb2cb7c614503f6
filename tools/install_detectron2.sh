#!/usr/bin/env bash
# Install detectron2 into the current Python environment.
#
# Upstream detectron2 is not on PyPI. Where GitHub is reachable, a user may instead run
#   pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'
# and skip this script. Here we repackage `sal-detectron2` (a PyPI repackaging of upstream
# detectron2, Apache-2.0) whose only wheel is tagged cp310 because it carries a compiled
# detectron2/_C. dcn_det needs none of _C (we bring our own deformable ops), so we drop it,
# retag the wheel as pure Python and install it without its numpy<2 pin.
set -euo pipefail
PY=${PYTHON:-python}
VERSION=${DETECTRON2_VERSION:-0.7.2}

if "$PY" -c "import detectron2" 2>/dev/null; then
  echo "detectron2 already installed: $("$PY" -c 'import detectron2; print(detectron2.__version__, detectron2.__file__)')"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.10 \
  "sal-detectron2==${VERSION}" -d "$work/dl"
"$PY" -m wheel unpack "$work"/dl/*.whl -d "$work/unpacked"
src=$(echo "$work"/unpacked/*)
rm -f "$src"/detectron2/_C*.so
wheel_meta=$(echo "$src"/*.dist-info/WHEEL)
sed -i -e 's/^Root-Is-Purelib:.*/Root-Is-Purelib: true/' -e 's/^Tag:.*/Tag: py3-none-any/' "$wheel_meta"
# RECORD lists the deleted .so; wheel pack regenerates RECORD from the files present.
mkdir -p "$work/out"
"$PY" -m wheel pack "$src" -d "$work/out"
"$PY" -m pip install --no-deps "$work"/out/*.whl
"$PY" -c "import detectron2; print('installed detectron2', detectron2.__version__)"
