"""Loading of the compiled library dcn_det._C."""
import subprocess
import sys

from dcn_det.ops._extension import has_cuda_kernels


def test_missing_extension_raises_import_error_saying_how_to_build():
    # sys.modules[name] = None makes `import name` fail, as an unbuilt extension would.
    code = "import sys; sys.modules['dcn_det._C'] = None; import dcn_det.ops"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "make install" in result.stderr and "pip install --no-build-isolation -e ." in result.stderr


def test_has_cuda_kernels_reports_a_bool():
    assert isinstance(has_cuda_kernels(), bool)


def test_importing_ops_and_layers_imports_no_detectron2():
    """dcn_det.ops / dcn_det.layers are torch-only: importing them (which runs
    dcn_det/__init__.py) neither imports detectron2 nor registers anything with it."""
    code = (
        "import sys, dcn_det, dcn_det.ops, dcn_det.layers; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'detectron2'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
