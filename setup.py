"""Build dcn_det and its compiled operator library dcn_det._C.

CPU kernels are always built. CUDA kernels are built when a GPU is visible or
FORCE_CUDA=1 (nvcc must be installed). Useful environment variables:
  FORCE_CUDA=1              build the CUDA kernels without a visible GPU
  TORCH_CUDA_ARCH_LIST      GPU architectures, e.g. "8.0;9.0" (default below)
  CUDA_HOME                 CUDA toolkit root (default: found from nvcc)
  MAX_JOBS                  parallel compile jobs (ninja)
  DCN_CXX_FLAGS             extra host compiler flags, e.g. "--coverage -O0" (tools/coverage.sh)
  DCN_LINK_FLAGS            extra linker flags, e.g. "--coverage"
"""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join("dcn_det", "ops", "csrc")


def _locate_cuda_home():
    """torch guesses CUDA_HOME as the parent of nvcc's folder, which is wrong when
    nvcc is a wrapper in /usr/local/bin; prefer the conventional toolkit root."""
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    for candidate in ("/usr/local/cuda",):
        if os.path.exists(os.path.join(candidate, "bin", "nvcc")):
            os.environ["CUDA_HOME"] = candidate
            return
    nvcc = shutil.which("nvcc")
    if nvcc:
        os.environ["CUDA_HOME"] = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))


_locate_cuda_home()

import torch  # noqa: E402  (after CUDA_HOME is settled: cpp_extension reads it on import)
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def _pip_cuda_include_dirs():
    """Headers of the CUDA libraries that torch's wheels ship (cusparse.h, ...),
    needed by ATen's CUDA headers when the toolkit lacks them."""
    dirs = []
    for path in sys.path:
        dirs += glob.glob(os.path.join(path, "nvidia", "cu*", "include"))
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def _default_cuda_archs():
    """Volta to Blackwell, minus what this nvcc dropped (CUDA 13 has no compute_70);
    PTX of the newest for forward compatibility."""
    wanted = ["7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0"]
    try:
        out = subprocess.run([os.path.join(CUDA_HOME, "bin", "nvcc"), "--list-gpu-arch"],
                             capture_output=True, text=True, check=True).stdout
        supported = {f"{a[len('compute_'):-1]}.{a[-1]}" for a in out.split() if a.startswith("compute_")}
        archs = [a for a in wanted if a in supported] or wanted[1:6]
    except (OSError, subprocess.CalledProcessError):
        archs = ["7.5", "8.0", "8.6", "9.0"]
    return ";".join(archs[:-1] + [archs[-1] + "+PTX"])


def _openmp_flags():
    """-fopenmp where torch's intra-op backend is OpenMP.

    at::parallel_for is an inline template: in a file compiled without -fopenmp it
    runs the whole range on the calling thread (ATen/Parallel-inl.h), so every CPU
    loop of the extension was serial whatever torch.set_num_threads said (found
    2026-12-01: the second thread only ever ran MKL/oneDNN). At run time torch has
    already loaded libgomp.so.1, so the extension shares torch's OpenMP runtime.
    """
    if sys.platform == "win32" or not torch.backends.openmp.is_available():
        return []
    return ["-fopenmp"]


def get_extensions():
    sources = [os.path.join(CSRC, "module.cpp")]
    sources += sorted(glob.glob(os.path.join(CSRC, "*.cpp")))
    sources += sorted(glob.glob(os.path.join(CSRC, "cpu", "*.cpp")))
    sources += sorted(glob.glob(os.path.join(CSRC, "cpu", "isa", "*.cpp")))
    sources += sorted(glob.glob(os.path.join(CSRC, "autograd", "*.cpp")))
    sources += sorted(glob.glob(os.path.join(CSRC, "autocast", "*.cpp")))
    sources = list(dict.fromkeys(sources))
    cuda_sources = sorted(glob.glob(os.path.join(CSRC, "cuda", "*.cu")))

    force_cuda = os.environ.get("FORCE_CUDA", "0") == "1"
    with_cuda = CUDA_HOME is not None and (torch.cuda.is_available() or force_cuda)
    if force_cuda and CUDA_HOME is None:
        raise RuntimeError("FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME")

    cxx_flags = ["-O3"] + _openmp_flags() + os.environ.get("DCN_CXX_FLAGS", "").split()  # C++ standard: torch's
    link_flags = _openmp_flags() + os.environ.get("DCN_LINK_FLAGS", "").split()
    define_macros = []
    if with_cuda:
        if torch.version.cuda is None:
            raise RuntimeError("CUDA kernels requested but this torch build has no CUDA support")
        if not torch.cuda.is_available():
            # Building without a GPU (FORCE_CUDA=1): the common data-centre and desktop
            # architectures this nvcc supports. With a GPU visible, torch targets that GPU.
            os.environ.setdefault("TORCH_CUDA_ARCH_LIST", _default_cuda_archs())
        return [
            CUDAExtension(
                "dcn_det._C",
                sources + cuda_sources,
                include_dirs=_pip_cuda_include_dirs(),
                define_macros=define_macros,
                extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]},
                extra_link_args=link_flags,
            )
        ]
    return [
        CppExtension("dcn_det._C", sources, define_macros=define_macros, extra_compile_args={"cxx": cxx_flags},
                     extra_link_args=link_flags)
    ]


setup(
    name="dcn_det",
    version="0.1.0",
    description="Deformable ConvNets (DCNv1/DCNv2) operators and detectron2 components",
    packages=find_packages(exclude=("tests", "tests.*", "tools", "configs")),
    python_requires=">=3.10",
    ext_modules=get_extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
