"""MODEL.FPN.TOP_BLOCK "p6_conv_c5": P6 as the authors' Deformable FPN computes it, a 3x3
stride-2 conv on res5, checked against F.conv2d on the backbone's own res5; "maxpool" stays
detectron2's."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg
from detectron2.modeling import build_backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool

from dcn_det import add_dcn_config
from dcn_det.config import ConfigError, check_cfg
from dcn_det.modeling import LastLevelP6FromC5


def _cfg(top_block):
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.BACKBONE.NAME = "build_dcn_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, cfg.MODEL.RESNETS.WIDTH_PER_GROUP, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 16, 8, 32
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.FPN.TOP_BLOCK = top_block
    return cfg


@pytest.mark.parametrize("size", [(96, 128), (160, 96)])  # FPN inputs are padded to multiples of 32
def test_p6_is_a_stride_2_conv_on_res5(size):
    torch.manual_seed(0)
    backbone = build_backbone(_cfg("p6_conv_c5")).eval()
    assert isinstance(backbone.top_block, LastLevelP6FromC5)
    assert "backbone.top_block.p6.weight" in {f"backbone.{k}" for k in backbone.state_dict()}
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        features = backbone(x)
        c5 = backbone.bottom_up(x)["res5"]
    conv = backbone.top_block.p6
    torch.testing.assert_close(features["p6"], F.conv2d(c5, conv.weight, conv.bias, stride=2, padding=1))
    assert features["p6"].shape[-2:] == tuple((s + 1) // 2 for s in c5.shape[-2:])
    assert backbone.output_shape()["p6"].stride == 64


def test_default_top_block_is_detectron2s_max_pool_and_bad_values_are_refused():
    assert isinstance(build_backbone(_cfg("maxpool")).top_block, LastLevelMaxPool)
    with pytest.raises(ConfigError, match="MODEL.FPN.TOP_BLOCK must be one of"):
        check_cfg(_cfg("p6_from_p5"))
