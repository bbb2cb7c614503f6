# dcn_det — one-command environment, build, tests and demo.
#   make install   create .venv (torch, torchvision, detectron2, ...) and build dcn_det._C
#   make test      install if needed, then run the test suite
#   make demo      install if needed, then run the main job
# Re-running install when everything is in place only checks the stamps (seconds).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# CUDA kernels are compiled whenever nvcc exists (they run only where a GPU is).
FORCE_CUDA ?= $(if $(shell command -v nvcc),1,0)
MAX_JOBS ?= $(shell nproc)
PYTEST_ARGS ?=
# make test: one pytest-xdist worker per CPU, a test module per worker at a time (module
# fixtures train once); PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= $(shell nproc)

CSRC := $(shell find dcn_det/ops/csrc -type f \( -name '*.cpp' -o -name '*.cu' -o -name '*.h' \))
DEPS_STAMP := $(VENV)/.deps-installed
EXT_STAMP := $(VENV)/.dcn_det-built

.PHONY: install mxnet-venv test test-isa demo benchmark coverage sanitize gpu-check clean

install: $(EXT_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(DEPS_STAMP): requirements.txt tools/install_detectron2.sh | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	PYTHON=$(PY) tools/install_detectron2.sh
	touch $@

$(EXT_STAMP): $(DEPS_STAMP) $(CSRC) setup.py
	FORCE_CUDA=$(FORCE_CUDA) MAX_JOBS=$(MAX_JOBS) $(PY) -m pip install -q --no-build-isolation --no-deps -e .
	$(PY) -c "import dcn_det.ops; from dcn_det.ops._extension import has_cuda_kernels; print('dcn_det._C built; CUDA kernels:', has_cuda_kernels())"
	touch $@

test: install
	$(PY) -m pytest -rs -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# The model-level tests again under each other CPU instruction set the machine supports
# (ATEN_CPU_CAPABILITY=default / avx2 / avx512): see tools/test_isa_variants.sh.
test-isa: install
	PYTHON=$(PY) PYTEST_ARGS="$(PYTEST_ARGS)" PYTEST_WORKERS=$(PYTEST_WORKERS) tools/test_isa_variants.sh

# The main job: the classification study (plain vs deformable CNNs on digits), then plain and
# deformable detectors trained on generated data; compared in output/demo/report.md.
# DEMO_ARGS, e.g. "--iters 300" (shorter) or "--models plain dcnv1 dcnv2".
DEMO_ARGS ?=
demo: install
	$(PY) tools/demo.py $(DEMO_ARGS)

benchmark: install
	$(PY) tools/benchmark_ops.py

# Line coverage of the C++ in dcn_det/ops/csrc/{common,cpu}/ by the CPU tests (gcov build
# in build/coverage/, the normal build untouched).
coverage: install
	PYTHON=$(PY) tools/coverage.sh

# The operator tests and a fuzzer batch under ASan + UBSan (build in build/sanitize/);
# WITH_COVERAGE=1: the same build gcov-instrumented too, ending with coverage's table and check.
WITH_COVERAGE ?= 0
sanitize: install
	WITH_COVERAGE=$(WITH_COVERAGE) PYTHON=$(PY) tools/sanitize.sh

# MXNet 1.9.1 in its own venv (it needs numpy<1.24), only to verify dcn_det against the
# original operators (tests/verify_mxnet/, which skip without it); never a dependency.
MXNET_VENV ?= .venv-mxnet
mxnet-venv: $(MXNET_VENV)/.installed

$(MXNET_VENV)/.installed:
	$(PYTHON) -m venv $(MXNET_VENV)
	$(MXNET_VENV)/bin/pip install -q "numpy<1.24" mxnet==1.9.1
	$(MXNET_VENV)/bin/python -c "import mxnet; print('MXNet', mxnet.__version__, 'in $(MXNET_VENV)')"
	touch $@

# On a machine with an NVIDIA GPU: build, CUDA tests, comparison with the host device
# path, compute-sanitizer, CUDA benchmark; summary in GPU_CHECK_OUT (see the script).
GPU_CHECK_OUT ?= output/gpu_check
gpu-check:
	tools/gpu_check.sh $(GPU_CHECK_OUT)

clean:
	rm -rf build dcn_det/_C*.so *.egg-info $(EXT_STAMP)
