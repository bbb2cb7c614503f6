"""The plain-argument builders behind the LazyConfig twins, on what the twin test does not reach:
their argument errors, res5 multi-grid dilations, and the poly schedule against the DeepLab
project's own scheduler (WarmupPolyLR) over every iteration, constant ending and constant
warm-up included."""
import pytest
import torch
from detectron2.projects.deeplab.lr_scheduler import WarmupPolyLR
from detectron2.solver import LRMultiplier

from dcn_det.modeling import DeformBottleneck, make_dcn_resnet_stages
from dcn_det.solver import WarmupPolyParamScheduler, dcn_optimizer_params


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(depth=34), "depth must be 50, 101 or 152"),
        (dict(res4_dilation=3), "res4_dilation must be 1 or 2"),
        (dict(res4_dilation=2, res5_dilation=2), "res5_dilation must be 1, 2 or 4 (4 when res4_dilation is 2)"),
        (dict(res5_dilation=3), "res5_dilation must be 1, 2 or 4"),
        (dict(res5_multi_grid=[1, 2]), "res5_multi_grid needs one entry per res5 block (3)"),
    ],
)
def test_stage_builder_names_the_bad_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_dcn_resnet_stages(**kwargs)


@pytest.mark.parametrize("deformable", [False, True])
def test_res5_multi_grid_dilates_each_block(deformable):
    stages = make_dcn_resnet_stages(
        50, res5_dilation=2, res5_multi_grid=[1, 2, 4], deform_on_per_stage=[False, False, False, deformable]
    )
    res5 = stages[3]
    assert [b.conv2.dilation for b in res5] == [(2, 2), (4, 4), (8, 8)]
    assert [b.conv2.stride for b in res5] == [(1, 1)] * 3  # dilated: no stride, output stride 16
    if deformable:
        assert all(isinstance(b, DeformBottleneck) for b in res5)
        assert [b.conv2_offset.dilation for b in res5] == [(2, 2), (4, 4), (8, 8)]


@pytest.mark.parametrize(
    "settings",
    [
        dict(warmup_iters=100, warmup_factor=0.001, warmup_method="linear", power=0.9, constant_ending=0.0),
        dict(warmup_iters=50, warmup_factor=0.1, warmup_method="constant", power=0.9, constant_ending=0.0),
        dict(warmup_iters=100, warmup_factor=0.001, warmup_method="linear", power=2.0, constant_ending=0.05),
    ],
)
def test_poly_schedule_is_the_deeplab_projects(settings):
    max_iter = 1000
    param = torch.nn.Parameter(torch.zeros(1))
    reference = WarmupPolyLR(torch.optim.SGD([param], lr=0.01), max_iter, **settings)
    ours = LRMultiplier(torch.optim.SGD([param], lr=0.01), WarmupPolyParamScheduler(max_iter, **settings), max_iter)
    for iteration in range(max_iter):
        reference.last_epoch = ours.last_epoch = iteration
        assert ours.get_lr() == pytest.approx(reference.get_lr(), rel=1e-9, abs=1e-15), f"iteration {iteration}"


def test_poly_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="warmup_method"):
        WarmupPolyParamScheduler(100, warmup_method="cosine")
    with pytest.raises(ValueError, match="max_iter"):
        WarmupPolyParamScheduler(0)


def test_lazyconfig_lr_factor_errors_name_the_lazyconfig_field():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"param_lr_factors\[0\] must be"):
        dcn_optimizer_params(model, param_lr_factors=["weight"])


@pytest.mark.parametrize("offset_dilation", [0, 1, 3])
def test_offset_conv_dilation_keeps_the_output_size(offset_dilation):
    """MODEL.DCN.OFFSET_CONV_DILATION / offset_dilation: the offset conv of a dilation-2 res5
    (and of a strided block) samples at its own dilation, padded so that the offsets still have
    the deformable conv's output size."""
    import torch.nn.functional as F

    stages = make_dcn_resnet_stages(50, res5_dilation=2, deform_on_per_stage=[False, True, False, True],
                                    offset_dilation=offset_dilation)
    for block in (stages[1][0], stages[3][0]):  # res3a: stride 2, dilation 1; res5a: dilation 2
        conv2, offset_conv = block.conv2, block.conv2_offset
        want = conv2.dilation if offset_dilation == 0 else (offset_dilation,) * 2
        assert offset_conv.dilation == want and offset_conv.stride == conv2.stride
        x = torch.randn(1, offset_conv.in_channels, 13, 11)
        assert offset_conv(x).shape[-2:] == F.conv2d(x, conv2.weight, stride=conv2.stride, padding=conv2.padding,
                                                     dilation=conv2.dilation).shape[-2:]


def test_offset_conv_dilation_key_reaches_the_yaml_backbone_and_is_checked():
    from detectron2.config import get_cfg
    from detectron2.modeling import build_backbone

    from dcn_det import add_dcn_config
    from dcn_det.config import check_cfg

    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.BACKBONE.NAME = "build_dcn_resnet_backbone"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res5"]
    cfg.MODEL.RESNETS.RES5_DILATION = 2
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, False, False, True]
    cfg.MODEL.DCN.OFFSET_CONV_DILATION = 1
    backbone = build_backbone(cfg)
    assert [b.conv2_offset.dilation for b in backbone.res5] == [(1, 1)] * 3
    assert [b.conv2.dilation for b in backbone.res5] == [(2, 2)] * 3
    cfg.MODEL.DCN.OFFSET_CONV_DILATION = -1
    with pytest.raises(ValueError, match="MODEL.DCN.OFFSET_CONV_DILATION must be an integer >= 0"):
        check_cfg(cfg)
