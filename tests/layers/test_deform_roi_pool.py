"""dcn_det.layers deformable RoI pooling modules (dpool, mdpool, R-FCN deformable PS-RoI pool)."""
import pytest
import torch

from dcn_det.layers import DeformPSRoIPool, DeformRoIPool, ModulatedDeformRoIPool
from dcn_det.ops import deform_psroi_pool


def _inputs(channels, seed=0, n=2, h=12, w=16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, h, w, generator=g)
    rois = torch.tensor([[0, 4.0, 8.0, 100.0, 90.0], [1, 20.0, 10.0, 60.0, 180.0], [1, 0.0, 0.0, 250.0, 190.0]])
    return x, rois


def _plain(x, rois, output_dim, k, scale=1 / 16, group_size=1):
    return deform_psroi_pool(x, rois, None, scale, output_dim, group_size, k, k, 4, 0.0, no_trans=True)


@pytest.mark.parametrize("cls", [DeformRoIPool, ModulatedDeformRoIPool])
def test_output_shape(cls):
    x, rois = _inputs(8)
    assert cls(8, output_size=5, offset_fc_dims=(32,))(x, rois).shape == (3, 8, 5, 5)


def test_dpool_at_init_equals_plain_roi_pooling():
    x, rois = _inputs(8, seed=1)
    pool = DeformRoIPool(8, output_size=7, offset_fc_dims=(64, 64))
    torch.testing.assert_close(pool(x, rois), _plain(x, rois, 8, 7))


def test_mdpool_at_init_equals_half_of_plain_roi_pooling():
    x, rois = _inputs(8, seed=2)
    pool = ModulatedDeformRoIPool(8, output_size=7, offset_fc_dims=(64,))
    torch.testing.assert_close(pool(x, rois), 0.5 * _plain(x, rois, 8, 7))


@pytest.mark.parametrize("cls", [DeformRoIPool, ModulatedDeformRoIPool])
def test_gradients_reach_the_offset_fc_layers(cls):
    x, rois = _inputs(4, seed=3)
    x.requires_grad_()
    pool = cls(4, output_size=3, offset_fc_dims=(16,))
    pool(x, rois).square().sum().backward()
    assert pool.offset_fc[-1].weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
    if isinstance(pool, ModulatedDeformRoIPool):
        assert pool.mask_fc[-1].weight.grad.abs().sum() > 0


def test_offsets_move_the_bins_after_an_update():
    x, rois = _inputs(4, seed=4)
    pool = DeformRoIPool(4, output_size=3, offset_fc_dims=(16,))
    before = pool(x, rois).detach()
    torch.nn.init.normal_(pool.offset_fc[-1].weight, std=0.1)
    assert not torch.allclose(pool(x, rois), before)


def test_accepts_per_image_boxes():
    x, rois = _inputs(4, seed=5)
    pool = DeformRoIPool(4, output_size=3, offset_fc_dims=(16,))
    per_image = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    torch.testing.assert_close(pool(x, per_image), pool(x, rois))


def test_rfcn_deformable_psroi_pool_at_init_equals_plain_psroi_pooling():
    k, classes = 3, 5
    feats, rois = _inputs(6, seed=6)
    scores = torch.randn(2, classes * k * k, 12, 16, generator=torch.Generator().manual_seed(7))
    pool = DeformPSRoIPool(6, classes, group_size=k)
    assert pool.conv_offset.out_channels == 2 * classes * k * k
    torch.testing.assert_close(pool(feats, scores, rois), _plain(scores, rois, classes, k, group_size=k))


@pytest.mark.parametrize("agnostic", [True, False])
def test_rfcn_offset_conv_receives_gradient(agnostic):
    k, classes = 3, 4
    feats, rois = _inputs(6, seed=8)
    scores = torch.randn(2, classes * k * k, 12, 16, generator=torch.Generator().manual_seed(9))
    pool = DeformPSRoIPool(6, classes, group_size=k, class_agnostic_offsets=agnostic)
    assert pool.num_offset_classes == (1 if agnostic else classes)
    pool(feats, scores, rois).square().sum().backward()
    assert pool.conv_offset.weight.grad.abs().sum() > 0


def test_zero_rois_give_empty_output():
    x, _ = _inputs(4)
    pool = ModulatedDeformRoIPool(4, output_size=3, offset_fc_dims=(8,))
    assert pool(x, torch.zeros(0, 5)).shape == (0, 4, 3, 3)


@pytest.mark.parametrize("modulated", [False, True])
@pytest.mark.parametrize("agnostic", [False, True])
def test_psroi_zero_rois_give_empty_output(modulated, agnostic):
    # An image without proposals (R-FCN inference on a tiny image did this) must give
    # [0, output_dim, k, k], not a reshape error.
    k, classes = 3, 4
    feats, _ = _inputs(6, seed=11)
    scores = torch.randn(2, classes * k * k, 12, 16)
    pool = DeformPSRoIPool(6, classes, group_size=k, class_agnostic_offsets=agnostic, modulated=modulated)
    assert pool(feats, scores, torch.zeros(0, 5)).shape == (0, classes, k, k)


@pytest.mark.parametrize("cls", [DeformRoIPool, ModulatedDeformRoIPool])
def test_part_size_smaller_than_output_keeps_output_size_and_shrinks_fc(cls):
    x, rois = _inputs(4, seed=10)
    pool = cls(4, output_size=6, offset_fc_dims=(), part_size=3)
    assert pool(x, rois).shape == (3, 4, 6, 6)
    assert pool.offset_fc[-1].in_features == 4 * 3 * 3
    assert pool.offset_fc[-1].out_features == 2 * 3 * 3


def test_spatial_scale_argument_overrides_the_constructor():
    x, rois = _inputs(4, seed=11)
    pool = DeformRoIPool(4, output_size=3, spatial_scale=1 / 16, offset_fc_dims=(8,))
    torch.testing.assert_close(pool(x, rois, spatial_scale=1 / 8), _plain(x, rois, 4, 3, scale=1 / 8))
    assert not torch.allclose(pool(x, rois, spatial_scale=1 / 8), pool(x, rois))


@pytest.mark.parametrize("agnostic", [True, False])
def test_modulated_rfcn_pool_at_init_equals_half_of_plain_psroi_pooling(agnostic):
    k, classes = 3, 4
    feats, rois = _inputs(6, seed=12)
    scores = torch.randn(2, classes * k * k, 12, 16, generator=torch.Generator().manual_seed(13))
    pool = DeformPSRoIPool(6, classes, group_size=k, class_agnostic_offsets=agnostic, modulated=True)
    assert pool.conv_offset.out_channels == 3 * pool.num_offset_classes * k * k
    expected = 0.5 * _plain(scores, rois, classes, k, group_size=k)
    torch.testing.assert_close(pool(feats, scores, rois), expected)
    pool(feats, scores, rois).square().sum().backward()
    mask_rows = pool.conv_offset.weight.grad[2 * pool.num_offset_classes * k * k :]
    assert mask_rows.abs().sum() > 0
