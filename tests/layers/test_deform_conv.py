"""dcn_det.layers deformable convolution modules."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcn_det.layers import DeformConv, DeformConvWithOffset, ModulatedDeformConv, ModulatedDeformConvWithOffset


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _offset_for(layer, x):
    n, _, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return ho, wo


@pytest.mark.parametrize("stride,padding,dilation,groups,dg", [(1, 1, 1, 1, 1), (2, 2, 2, 2, 4), (1, 0, 1, 4, 2)])
def test_deform_conv_with_zero_offset_equals_conv2d(stride, padding, dilation, groups, dg):
    x = torch.randn(2, 8, 11, 9, generator=_gen(), dtype=torch.float64)
    layer = DeformConv(8, 12, 3, stride, padding, dilation, groups, dg).double()
    ho, wo = _offset_for(layer, x)
    offset = torch.zeros(2, 2 * dg * 9, ho, wo, dtype=torch.float64)
    expected = F.conv2d(x, layer.weight, None, stride, padding, dilation, groups)
    torch.testing.assert_close(layer(x, offset), expected)


def test_deform_conv_applies_norm_then_activation():
    x = torch.randn(2, 4, 7, 7, generator=_gen(1))
    norm = nn.BatchNorm2d(6).eval()
    norm.running_mean.fill_(0.3)
    layer = DeformConv(4, 6, 3, padding=1, norm=norm, activation=torch.relu)
    out = layer(x, torch.zeros(2, 18, 7, 7))
    expected = torch.relu(norm(F.conv2d(x, layer.weight, None, 1, 1)))
    torch.testing.assert_close(out, expected)


def test_modulated_deform_conv_with_unit_mask_equals_conv2d_with_bias():
    x = torch.randn(3, 6, 8, 8, generator=_gen(2), dtype=torch.float64)
    layer = ModulatedDeformConv(6, 4, 3, padding=1, deformable_groups=3).double()
    nn.init.normal_(layer.bias)
    out = layer(x, torch.zeros(3, 2 * 3 * 9, 8, 8, dtype=torch.float64), torch.ones(3, 3 * 9, 8, 8, dtype=torch.float64))
    torch.testing.assert_close(out, F.conv2d(x, layer.weight, layer.bias, 1, 1))


def test_modulated_deform_conv_mask_scales_the_sampled_values():
    x = torch.randn(1, 4, 6, 6, generator=_gen(3), dtype=torch.float64)
    layer = ModulatedDeformConv(4, 4, 3, padding=1, bias=False).double()
    offset = torch.zeros(1, 18, 6, 6, dtype=torch.float64)
    out = layer(x, offset, torch.full((1, 9, 6, 6), 0.25, dtype=torch.float64))
    torch.testing.assert_close(out, 0.25 * F.conv2d(x, layer.weight, None, 1, 1))


def test_deform_conv_with_offset_starts_as_regular_conv():
    x = torch.randn(2, 8, 10, 10, generator=_gen(4))
    layer = DeformConvWithOffset(8, 16, 3, stride=2, padding=1, deformable_groups=2)
    assert torch.count_nonzero(layer.conv_offset.weight) == 0 and torch.count_nonzero(layer.conv_offset.bias) == 0
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight, None, 2, 1))


def test_modulated_deform_conv_with_offset_starts_as_half_scaled_conv():
    x = torch.randn(2, 8, 10, 10, generator=_gen(5))
    layer = ModulatedDeformConvWithOffset(8, 16, 3, padding=1, deformable_groups=2)
    nn.init.normal_(layer.bias)
    assert layer.conv_offset.out_channels == 3 * 2 * 9
    expected = 0.5 * F.conv2d(x, layer.weight, None, 1, 1) + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("cls", [DeformConvWithOffset, ModulatedDeformConvWithOffset])
def test_offset_branch_receives_gradient(cls):
    x = torch.randn(2, 4, 9, 9, generator=_gen(6))
    layer = cls(4, 4, 3, padding=1)
    layer(x).square().sum().backward()
    assert layer.conv_offset.weight.grad is not None
    assert layer.conv_offset.weight.grad.abs().sum() > 0
    assert layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [DeformConvWithOffset, ModulatedDeformConvWithOffset])
def test_empty_batch_gives_empty_output(cls):
    layer = cls(4, 6, 3, padding=1)
    out = layer(torch.zeros(0, 4, 9, 9))
    assert out.shape == (0, 6, 9, 9)


def test_invalid_groups_raise_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="groups"):
        DeformConv(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match="deformable_groups"):
        ModulatedDeformConv(6, 8, 3, deformable_groups=4)


def test_parameter_names_match_detectron2_layers():
    # detectron2.layers.DeformConv holds `weight` only (no bias), ModulatedDeformConv
    # `weight` and `bias`, and a `norm` submodule when given: checkpoints load by name.
    assert set(DeformConv(4, 8, 3).state_dict()) == {"weight"}
    assert set(ModulatedDeformConv(4, 8, 3).state_dict()) == {"weight", "bias"}
    with_norm = DeformConv(4, 8, 3, norm=nn.GroupNorm(2, 8))
    assert set(with_norm.state_dict()) == {"weight", "norm.weight", "norm.bias"}


def _detectron2_deform_layers():
    d2 = pytest.importorskip("detectron2.layers")
    try:
        d2.DeformConv(4, 8, 3)
    except ImportError as e:
        pytest.skip(f"detectron2's DeformConv cannot be built here (needs detectron2._C): {e}")
    return d2


def test_detectron2_state_dicts_load_strictly():
    d2 = _detectron2_deform_layers()
    ours = DeformConv(4, 8, 3, padding=1, deformable_groups=2)
    ours.load_state_dict(d2.DeformConv(4, 8, 3, padding=1, deformable_groups=2).state_dict(), strict=True)
    ours_m = ModulatedDeformConv(4, 8, 3, padding=1)
    ours_m.load_state_dict(d2.ModulatedDeformConv(4, 8, 3, padding=1).state_dict(), strict=True)


def test_extra_repr_names_the_geometry():
    text = repr(ModulatedDeformConv(4, 8, (3, 1), stride=2, padding=(1, 0), deformable_groups=2))
    assert "kernel_size=(3, 1)" in text and "deformable_groups=2" in text and "bias=True" in text
