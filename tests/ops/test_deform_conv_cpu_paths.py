"""The CPU deform_conv2d forward and backward have two paths (csrc/cpu/deform_conv2d_kernel.cpp): fused
(one L2-sized tile of columns at a time, multiplied while in cache; small weights) and
unfused (the whole column matrix, one product; large weights). The other tests' small
shapes all take the fused one, so here each is forced in turn (test_hooks' conv_path)
and checked against the float64 reference, on shapes with many tiles and partial tiles;
and the CPU loops, which run on several threads, give the same results on one.
"""
import collections
import shutil
import subprocess
import sys

import pytest
import torch

from dcn_det import _C
from dcn_det.ops import available_cpu_isas, deform_conv2d, deform_psroi_pool
from dcn_det.ops._cpu_isa import forced_cpu_isa
from dcn_det.ops._device_path import test_hooks

from .deform_conv2d_reference import deform_conv2d_ref
from .fuzz import fuzz
from .test_deform_conv import REF_CASES, WIDE_CASES, Case, assert_grads_close, conv_kwargs, make_inputs, run_with_grads

PATHS = ("fused", "unfused")

# 1 to 40 tiles per image: a float64 row of 64 channels x 9 taps is 4.6 KB, so a 256 KB
# tile holds 56 rows; 2 images of 40x41 pixels make 30 tiles each, the last one partial.
TILED_CASES = [
    Case(2, 64, 40, 41, 64, (3, 3), 1, 1, 1, 1, 1, mask=True, bias=True, scale=3),
    Case(1, 32, 37, 30, 48, (3, 3), 1, 1, 1, 2, 4, mask=False, bias=True, scale=4),
    Case(3, 16, 20, 33, 16, (3, 3), 2, 1, 1, 4, 2, mask=True, bias=False, scale=3),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", REF_CASES + WIDE_CASES + TILED_CASES, ids=str)
def test_each_forward_path_matches_the_reference(case, path):
    seed = 300 + (REF_CASES + WIDE_CASES + TILED_CASES).index(case)
    tensors = make_inputs(case, seed)
    with test_hooks(conv_path=path):
        out, grads = run_with_grads(deform_conv2d, tensors, seed, **conv_kwargs(case))
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, tensors, seed, **conv_kwargs(case))
    torch.testing.assert_close(out, ref_out, rtol=1e-9, atol=1e-9)
    assert_grads_close(grads, ref_grads, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", TILED_CASES, ids=str)
def test_bfloat16_forward_multiplies_in_bfloat16_within_its_rounding(case, path):
    """bfloat16 inputs: sampled in float32, columns rounded to bfloat16, product accumulated
    in float32 (like a bfloat16 convolution). Within a few bf16 roundings of the float64
    reference on the rounded inputs, and not the float32 result merely rounded at the end
    (which would be ~10x closer: the columns were not rounded)."""
    seed = 400 + TILED_CASES.index(case)
    x, offset, weight, bias, mask = make_inputs(case, seed, dtype=torch.bfloat16)
    with test_hooks(conv_path=path):
        out = deform_conv2d(x, offset, weight, bias, mask=mask, **conv_kwargs(case))
        float_out = deform_conv2d(*(None if t is None else t.float() for t in (x, offset, weight, bias)),
                                  mask=None if mask is None else mask.float(), **conv_kwargs(case))
    assert out.dtype == torch.bfloat16
    ref = deform_conv2d_ref(*(None if t is None else t.double() for t in (x, offset, weight, bias)),
                            mask=None if mask is None else mask.double(), **conv_kwargs(case))
    scale = ref.abs().max()
    error = ((out.double() - ref).abs().max() / scale).item()
    assert error < 8e-3, error  # tests/ops/test_autocast.py's bfloat16 tolerance
    # The largest errors are the final rounding of the largest outputs, the same in both;
    # the rounded columns show in the mean error (measured 2026-12-01: 1.11-1.58x).
    assert not torch.equal(out, float_out.to(torch.bfloat16))
    mean_error = (out.double() - ref).abs().mean().item()
    float_rounded_mean_error = (float_out.to(torch.bfloat16).double() - ref).abs().mean().item()
    assert mean_error > 1.03 * float_rounded_mean_error, (mean_error, float_rounded_mean_error)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("path", PATHS)
def test_each_instruction_set_on_shapes_with_whole_transpose_tiles(path, isa):
    """The NCHW <-> channels-last transposes move whole 16x16 tiles in registers (wide
    instruction sets) and the rest element by element: 64 channels x 41 columns has both."""
    if isa not in available_cpu_isas():
        pytest.skip(f"{isa}: not built or not supported by this CPU")
    case = TILED_CASES[0]
    tensors = make_inputs(case, 77)
    with forced_cpu_isa(isa), test_hooks(conv_path=path):
        out, grads = run_with_grads(deform_conv2d, tensors, 78, **conv_kwargs(case))
    ref_out, ref_grads = run_with_grads(deform_conv2d_ref, tensors, 78, **conv_kwargs(case))
    torch.testing.assert_close(out, ref_out, rtol=1e-9, atol=1e-9)
    assert_grads_close(grads, ref_grads, rtol=1e-9, atol=1e-9)
    x32 = [None if t is None else t.float() for t in tensors]
    with forced_cpu_isa(isa), test_hooks(conv_path=path):
        out32 = deform_conv2d(x32[0], x32[1], x32[2], x32[3], mask=x32[4], **conv_kwargs(case))
    torch.testing.assert_close(out32.double(), ref_out, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", PATHS)
def test_each_forward_path_on_random_calls(path):
    with test_hooks(conv_path=path):
        outcomes = fuzz(300, seed=5000 + PATHS.index(path), ops=("deform_conv2d",))
    failures = [o.detail for o in outcomes if o.kind == "FAIL"]
    assert not failures, f"{path}: {len(failures)} of {len(outcomes)} calls failed, e.g.:\n" + "\n".join(failures[:10])
    kinds = collections.Counter(o.kind for o in outcomes)
    assert kinds["match"] > 0.4 * len(outcomes), kinds


def test_conv_path_hook_rejects_unknown_paths_and_restores_the_previous_one():
    before = _C._get_test_hooks()
    with pytest.raises(ValueError, match="conv_path"):
        with test_hooks(conv_path="tiled"):
            pass
    with test_hooks(conv_path="unfused"):
        assert _C._get_test_hooks()[2] == 2
    assert _C._get_test_hooks() == before


def _conv_results(case, seed):
    tensors = make_inputs(case, seed, dtype=torch.float32)
    return run_with_grads(deform_conv2d, tensors, seed, **conv_kwargs(case))


def _pool_results(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 7 * 7 * 4, 24, 30, generator=g).requires_grad_()
    rois = torch.tensor([[0, 1.5, 2.0, 300.0, 200.0], [1, 40.0, 10.0, 420.0, 330.0], [0, 0.0, 0.0, 470.0, 370.0]])
    offset = (torch.randn(3, 2 * 2, 7, 7, generator=g) * 0.5).requires_grad_()
    out = deform_psroi_pool(x, rois, offset, spatial_scale=1 / 16, output_dim=4, group_size=7, pooled_size=7,
                            part_size=7, sample_per_part=4, trans_std=0.1)
    grads = torch.autograd.grad(out, (x, offset), torch.randn(out.shape, generator=g))
    return out.detach(), list(grads)


@pytest.mark.parametrize("path", PATHS)
def test_one_thread_and_several_give_the_same_results(path, two_threads):
    """The sampling loops split their work by fixed tiles and channel blocks, not by thread:
    the sampled values, the input/offset/mask gradients and the pooling results do not
    depend on the thread count (the products inside BLAS may round differently)."""
    case = TILED_CASES[0]
    with test_hooks(conv_path=path):
        many = _conv_results(case, 7), _pool_results(8)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            one = _conv_results(case, 7), _pool_results(8)
        finally:
            torch.set_num_threads(previous)
    for (out_many, grads_many), (out_one, grads_one) in zip(many, one):
        torch.testing.assert_close(out_many, out_one, rtol=1e-5, atol=1e-5)
        for got, exp in zip(grads_many, grads_one):
            if exp is not None:
                torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("nm") is None, reason="needs Linux and nm")
@pytest.mark.skipif(not torch.backends.openmp.is_available(), reason="torch's intra-op backend is not OpenMP")
def test_the_cpu_loops_are_compiled_with_openmp():
    """at::parallel_for is inline: compiled without -fopenmp it runs every loop on the
    calling thread (what happened until 2026-12-01). With it, the library calls libgomp."""
    symbols = subprocess.run(["nm", "-D", "--undefined-only", _C.__file__], capture_output=True, text=True,
                             check=True).stdout
    assert "GOMP_parallel" in symbols, "dcn_det._C was built without -fopenmp: its CPU loops run on one thread"
