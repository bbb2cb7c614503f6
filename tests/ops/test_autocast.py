"""Both operators under torch.autocast (csrc/autocast/): floating inputs take the autocast
dtype (a float32 weight meets a bfloat16 activation without a dtype error), RoIs keep
theirs, the output has the autocast dtype, gradients reach float32 leaves; results agree
with the float64 references within the autocast dtype's rounding."""
import pytest
import torch

from dcn_det.ops import deform_conv2d, deform_psroi_pool
from tests.ops.deform_conv2d_reference import deform_conv2d_ref
from tests.ops.deform_psroi_pool_reference import deform_psroi_pool_reference
from tests.ops.devices import requires_cuda

DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=requires_cuda)]
DTYPES = [pytest.param(torch.bfloat16, id="bf16"), pytest.param(torch.float16, id="f16")]
# Relative to the largest reference value, the reference taking the inputs rounded to the
# autocast dtype (a rounded offset can cross an integer point, where the offset gradient
# jumps): a few roundings of an 8-bit (bf16) or 11-bit (f16) mantissa, float32 sums.
TOLERANCE = {torch.bfloat16: 8e-3, torch.float16: 1e-3}  # measured: <= 3.5e-3, 4e-4


def _conv_case(device, seed):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w, co, k = 2, 8, 9, 7, 6, 3
    x = torch.randn(n, c, h, w, generator=g)
    offset = torch.randn(n, 2 * 2 * k * k, h, w, generator=g) * 1.5 + 0.37  # 2 offset groups, non-integer
    mask = torch.rand(n, 2 * k * k, h, w, generator=g)
    weight = torch.randn(co, c, k, k, generator=g) * 0.2
    bias = torch.randn(co, generator=g)
    return [t.to(device).requires_grad_() for t in (x, offset, weight, bias, mask)]


def _relative_error(actual, expected):
    return ((actual.double() - expected).abs().max() / expected.abs().max()).item()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_deform_conv2d_runs_on_the_autocast_dtype(device, dtype):
    x, offset, weight, bias, mask = _conv_case(device, seed=3)
    with torch.autocast(device, dtype=dtype):
        activation = x * 1.0  # float32 here; a conv2d before would give dtype
        out = deform_conv2d(activation.to(dtype), offset, weight, bias, padding=1, mask=mask)
    assert out.dtype == dtype
    # Exactly the operator on inputs cast to dtype: the autocast kernel only casts.
    cast = [t.detach().to(dtype) for t in (x, offset, weight, bias, mask)]
    torch.testing.assert_close(out, deform_conv2d(cast[0], cast[1], cast[2], cast[3], padding=1, mask=cast[4]), rtol=0, atol=0)
    args = [t.detach().to(dtype).double() for t in (x, offset, weight, bias, mask)]
    expected = deform_conv2d_ref(args[0].cpu(), args[1].cpu(), args[2].cpu(), args[3].cpu(), padding=1, mask=args[4].cpu())
    assert _relative_error(out.cpu(), expected) < TOLERANCE[dtype]

    out.float().square().sum().backward()
    reference_leaves = [t.detach().to(dtype).double().cpu().requires_grad_() for t in (x, offset, weight, bias, mask)]
    rx, ro, rw, rb, rm = reference_leaves
    deform_conv2d_ref(rx, ro, rw, rb, padding=1, mask=rm).square().sum().backward()
    for leaf, reference, name in zip((x, offset, weight, bias, mask), reference_leaves, ("input", "offset", "weight", "bias", "mask")):
        assert leaf.grad.dtype == torch.float32, name
        assert _relative_error(leaf.grad.cpu(), reference.grad) < TOLERANCE[dtype], name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_deform_psroi_pool_casts_features_and_offsets_but_not_rois(device, dtype):
    g = torch.Generator().manual_seed(5)
    k, classes, scale = 3, 4, 1.0 / 16
    features = torch.randn(2, classes * k * k, 40, 48, generator=g).to(device)
    # Corners far from 0, between bf16's representable values (a step of 4 px above 512).
    rois = torch.tensor([[0, 301.3, 250.7, 618.9, 577.1], [1, 517.4, 101.9, 745.3, 402.6]], device=device)
    offset = (torch.randn(2, 2, k, k, generator=g) * 0.3).to(device)
    args = (scale, classes, k, k, k, 2, 0.1)
    with torch.autocast(device, dtype=dtype):
        out = deform_psroi_pool(features, rois, offset, *args)
    assert out.dtype == dtype
    expected = deform_psroi_pool(features.to(dtype), rois, offset.to(dtype), *args)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    rounded_rois = deform_psroi_pool(features.to(dtype), rois.to(dtype), offset.to(dtype), *args)
    assert not torch.equal(out, rounded_rois)  # the case does tell whether RoIs were cast
    reference = deform_psroi_pool_reference(features.to(dtype).double().cpu(), rois.double().cpu(), offset.to(dtype).double().cpu(), *args)
    assert _relative_error(out.cpu(), reference) < TOLERANCE[dtype]


def test_outside_autocast_mixed_dtypes_are_an_error_naming_the_argument():
    x, offset, weight, _, _ = _conv_case("cpu", seed=1)
    with pytest.raises(ValueError, match="weight must have the same dtype as input"):
        deform_conv2d(x.detach().bfloat16(), offset.detach().bfloat16(), weight.detach())


def test_autocast_leaves_float64_alone():
    x, offset, weight, bias, mask = (t.detach().double() for t in _conv_case("cpu", seed=2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
    assert out.dtype == torch.float64  # as autocast does for conv2d
