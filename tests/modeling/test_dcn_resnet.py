"""dcn_det's DCN ResNet / ResNet-FPN backbones against detectron2's ResNet: equal at init, block
selection, freezing, and checkpoint compatibility (detectron2 dconv checkpoints, ImageNet-style
plain ResNet weights, detectron2's own dconv configs)."""
import pickle
from pathlib import Path

import pytest
import torch
from detectron2 import model_zoo
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import build_backbone, build_model
from detectron2.modeling.backbone import resnet as d2_resnet
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone
from torch import nn

import dcn_det.layers
from dcn_det import add_dcn_config
from dcn_det.engine import build_cfg
from dcn_det.modeling import DeformBottleneck, DeformRes5ROIHeads, DeformStandardROIHeads
from dcn_det.modeling.backbone import build_dcn_resnet_backbone, build_dcn_resnet_fpn_backbone

INPUT = ShapeSpec(channels=3)
ALL_STAGES = ["res2", "res3", "res4", "res5"]


def _cfg(deform_on=(False, True, True, True), modulated=False, groups=1, last=(-1, -1, -1, -1), **resnets):
    """ResNet-50 at reduced width (the block structure is what matters here)."""
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.RESNETS.OUT_FEATURES = ALL_STAGES
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 32
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 8
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = list(deform_on)
    cfg.MODEL.RESNETS.DEFORM_MODULATED = modulated
    cfg.MODEL.RESNETS.DEFORM_NUM_GROUPS = groups
    cfg.MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE = list(last)
    cfg.MODEL.FPN.IN_FEATURES = ALL_STAGES
    cfg.MODEL.FPN.OUT_CHANNELS = 16
    for key, value in resnets.items():
        cfg.MODEL.RESNETS[key] = value
    return cfg


def _plain(cfg):
    plain = cfg.clone()
    plain.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False] * 4
    return plain


def _randomize(module: nn.Module, seed: int = 0, offset_std: float = 0.0) -> None:
    """Random weights and FrozenBN statistics (so that equalities are not trivially true);
    conv2_offset weights get std ``offset_std`` (0 keeps the zero offsets of the init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict(keep_vars=True).items()):
            if not tensor.is_floating_point():
                continue
            if "conv2_offset" in name:
                tensor.copy_(torch.randn(tensor.shape, generator=g, dtype=tensor.dtype) * offset_std)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=g, dtype=tensor.dtype) + 0.5)
            elif tensor.dim() == 4:  # conv weights, He-scaled so that activations stay O(1)
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=g, dtype=tensor.dtype) * (2.0 / fan_in) ** 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=g, dtype=tensor.dtype) * 0.1 + (1.0 if name.endswith("norm.weight") else 0.0))


def _image(seed=0, size=(32, 64), batch=1):  # multiples of 32 (FPN)
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _assert_same_outputs(a, b, x):
    a.eval().double()
    b.eval().double()
    with torch.no_grad():
        out_a, out_b = a(x), b(x)
    assert out_a.keys() == out_b.keys()
    for key in out_a:
        torch.testing.assert_close(out_a[key], out_b[key], rtol=1e-9, atol=1e-9, msg=key)


def _offset_keys(module):
    return {k for k in module.state_dict() if "conv2_offset" in k}


def _deformable_stage_blocks(backbone):
    return {name: [i for i, b in enumerate(stage) if isinstance(b, DeformBottleneck)] for name, stage in zip(backbone.stage_names, backbone.stages)}


# --- equal to detectron2's ResNet at init --------------------------------------------------


@pytest.mark.parametrize("groups", [1, 2])
def test_plain_resnet_weights_load_with_exactly_the_offset_branches_missing(groups):
    cfg = _cfg(deform_on=(True, True, True, True), groups=groups)
    dcn = build_dcn_resnet_backbone(cfg, INPUT)
    result = dcn.load_state_dict(d2_resnet.build_resnet_backbone(_plain(cfg), INPUT).state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == _offset_keys(dcn)
    assert len(_offset_keys(dcn)) == 2 * 16  # weight and bias of every block of R-50


# (DEFORM_NUM_GROUPS, NUM_GROUPS): offset groups, and ResNeXt-style grouped 3x3 convs.
GROUPINGS = pytest.mark.parametrize("groups, conv_groups", [(1, 1), (2, 1), (2, 4)], ids=["dg1", "dg2", "resnext4-dg2"])


@GROUPINGS
def test_dcnv1_resnet_at_init_equals_detectron2_resnet_with_the_same_weights(groups, conv_groups):
    cfg = _cfg(deform_on=(True, True, True, True), groups=groups, NUM_GROUPS=conv_groups, WIDTH_PER_GROUP=8 // conv_groups)
    plain = d2_resnet.build_resnet_backbone(_plain(cfg), INPUT)
    _randomize(plain)
    dcn = build_dcn_resnet_backbone(cfg, INPUT)
    dcn.load_state_dict(plain.state_dict(), strict=False)
    _assert_same_outputs(dcn, plain, _image())


def test_dcnv2_resnet_at_init_equals_detectron2_resnet_with_doubled_conv2_weights():
    """The DCNv2 mask starts at sigmoid(0) = 1/2, so a modulated block computes the plain
    block with conv2's weights halved (before its norm)."""
    cfg = _cfg(deform_on=(False, True, True, True), modulated=True)
    plain = d2_resnet.build_resnet_backbone(_plain(cfg), INPUT)
    _randomize(plain)
    dcn = build_dcn_resnet_backbone(cfg, INPUT)
    dcn.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        for stage in dcn.stages:
            for block in stage:
                if isinstance(block, DeformBottleneck):
                    block.conv2.weight.mul_(2)
    _assert_same_outputs(dcn, plain, _image(1))


def test_dcn_resnet_has_the_output_shapes_of_detectron2_resnet():
    cfg = _cfg(deform_on=(True, True, True, True), modulated=True, RES5_DILATION=2)
    assert build_dcn_resnet_backbone(cfg, INPUT).output_shape() == d2_resnet.build_resnet_backbone(_plain(cfg), INPUT).output_shape()


@pytest.mark.parametrize("modulated", [False, True], ids=["dconv", "mdconv"])
def test_dcn_resnet_fpn_at_init_equals_detectron2_resnet_fpn(modulated):
    cfg = _cfg(modulated=modulated)
    plain = build_resnet_fpn_backbone(_plain(cfg), INPUT)
    _randomize(plain, seed=2)
    dcn = build_dcn_resnet_fpn_backbone(cfg, INPUT)
    result = dcn.load_state_dict(plain.state_dict(), strict=False)
    assert result.unexpected_keys == [] and set(result.missing_keys) == _offset_keys(dcn)
    with torch.no_grad():
        for block in dcn.modules():
            if isinstance(block, DeformBottleneck) and modulated:
                block.conv2.weight.mul_(2)
    _assert_same_outputs(dcn, plain, _image(2))


def test_dcn_resnet_is_registered_and_built_by_name():
    cfg = _cfg()
    cfg.MODEL.BACKBONE.NAME = "build_dcn_resnet_fpn_backbone"
    backbone = build_backbone(cfg)
    assert sum(isinstance(m, DeformBottleneck) for m in backbone.modules()) == 4 + 6 + 3


def test_dcn_resnet_backbone_runs_forward_and_backward_on_cpu():
    cfg = _cfg(modulated=True, NORM="BN")
    backbone = build_dcn_resnet_backbone(cfg, INPUT)
    _randomize(backbone, offset_std=0.01)
    out = backbone(_image(size=(32, 64), batch=2).float())
    sum(v.square().mean() for v in out.values()).backward()
    offset_grads = [b.conv2_offset.weight.grad for s in backbone.stages for b in s if isinstance(b, DeformBottleneck)]
    assert len(offset_grads) == 13 and all(g is not None and g.abs().sum() > 0 for g in offset_grads)


# --- which blocks are deformable ------------------------------------------------------------


def test_deformable_stages_are_those_of_deform_on_per_stage():
    backbone = build_dcn_resnet_backbone(_cfg(deform_on=(True, False, True, False)), INPUT)
    assert _deformable_stage_blocks(backbone) == {"res2": [0, 1, 2], "res3": [], "res4": [0, 1, 2, 3, 4, 5], "res5": []}


def test_deform_last_blocks_per_stage_selects_the_last_n_blocks():
    backbone = build_dcn_resnet_backbone(_cfg(last=(-1, 2, 1, 3)), INPUT)
    assert _deformable_stage_blocks(backbone) == {"res2": [], "res3": [2, 3], "res4": [5], "res5": [0, 1, 2]}


def test_deform_last_blocks_larger_than_the_stage_makes_all_blocks_deformable():
    backbone = build_dcn_resnet_backbone(_cfg(last=(-1, 10, 6, 4)), INPUT)
    assert _deformable_stage_blocks(backbone) == {"res2": [], "res3": [0, 1, 2, 3], "res4": list(range(6)), "res5": [0, 1, 2]}


@pytest.mark.parametrize("last", [0, -2])
def test_deform_last_blocks_must_be_all_or_positive(last):
    with pytest.raises(ValueError, match="DEFORM_LAST_BLOCKS_PER_STAGE"):
        build_dcn_resnet_backbone(_cfg(last=(-1, last, -1, -1)), INPUT)


def test_deform_last_blocks_is_ignored_for_stages_that_are_not_deformable():
    backbone = build_dcn_resnet_backbone(_cfg(deform_on=(False, False, False, True), last=(0, 0, 0, 1)), INPUT)
    assert _deformable_stage_blocks(backbone) == {"res2": [], "res3": [], "res4": [], "res5": [2]}


def test_deformable_blocks_need_bottleneck_blocks():
    with pytest.raises(ValueError, match="bottleneck"):
        build_dcn_resnet_backbone(_cfg(DEPTH=18, RES2_OUT_CHANNELS=64), INPUT)


def test_deformable_blocks_keep_the_dilation_of_the_plain_blocks():
    backbone = build_dcn_resnet_backbone(_cfg(RES5_DILATION=2), INPUT)
    for block in backbone.res5:
        assert block.conv2.dilation == block.conv2_offset.dilation == (2, 2)
        assert block.conv2.padding == block.conv2_offset.padding == (2, 2)
    assert backbone.output_shape()["res5"].stride == 16


@pytest.mark.parametrize("stride_in_1x1, conv2_stride", [(True, (1, 1)), (False, (2, 2))])
def test_deformable_blocks_keep_the_stride_of_the_plain_blocks(stride_in_1x1, conv2_stride):
    backbone = build_dcn_resnet_backbone(_cfg(STRIDE_IN_1X1=stride_in_1x1), INPUT)
    block = backbone.res3[0]
    assert block.conv2.stride == block.conv2_offset.stride == conv2_stride
    assert backbone.output_shape()["res3"].stride == 8


# --- freezing --------------------------------------------------------------------------------


def test_freeze_at_freezes_swapped_in_blocks_of_frozen_stages():
    cfg = _cfg(deform_on=(True, True, True, True), NORM="BN")
    cfg.MODEL.BACKBONE.FREEZE_AT = 3  # stem, res2, res3
    backbone = build_dcn_resnet_backbone(cfg, INPUT)
    for name in ("res2", "res3"):
        for block in getattr(backbone, name):
            assert isinstance(block, DeformBottleneck)
            assert not any(p.requires_grad for p in block.parameters()), name
            assert not block.conv2_offset.weight.requires_grad
            assert isinstance(block.conv2.norm, FrozenBatchNorm2d)
    for block in backbone.res4:
        assert all(p.requires_grad for p in block.parameters())
        assert isinstance(block.conv2.norm, nn.BatchNorm2d)


def test_freeze_at_zero_leaves_every_block_trainable():
    cfg = _cfg(deform_on=(True, True, True, True))
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    backbone = build_dcn_resnet_backbone(cfg, INPUT)
    assert all(p.requires_grad for p in backbone.parameters())


# --- checkpoint compatibility with detectron2's own deformable blocks -----------------------


@pytest.fixture
def detectron2_dconv(monkeypatch):
    """detectron2's build_resnet_backbone with its DeformBottleneckBlocks built on dcn_det's
    DeformConv / ModulatedDeformConv (same constructor), since detectron2's need _C."""
    monkeypatch.setattr(d2_resnet, "DeformConv", dcn_det.layers.DeformConv)
    monkeypatch.setattr(d2_resnet, "ModulatedDeformConv", dcn_det.layers.ModulatedDeformConv)

    def build(cfg):
        backbone = d2_resnet.build_resnet_backbone(cfg, INPUT)
        assert any(isinstance(m, d2_resnet.DeformBottleneckBlock) for m in backbone.modules())
        return backbone

    return build


@pytest.mark.parametrize("modulated", [False, True], ids=["dconv", "mdconv"])
@pytest.mark.parametrize("groups", [1, 2])
def test_detectron2_dconv_resnet_state_dict_loads_strictly(detectron2_dconv, modulated, groups):
    cfg = _cfg(modulated=modulated, groups=groups)
    theirs = detectron2_dconv(cfg)
    ours = build_dcn_resnet_backbone(cfg, INPUT)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(ours.state_dict(), strict=True)


@pytest.mark.parametrize("modulated", [False, True], ids=["dconv", "mdconv"])
@GROUPINGS
def test_detectron2_dconv_resnet_weights_give_the_same_outputs(detectron2_dconv, modulated, groups, conv_groups):
    cfg = _cfg(deform_on=(True, True, True, True), modulated=modulated, groups=groups, NUM_GROUPS=conv_groups, WIDTH_PER_GROUP=8 // conv_groups)
    theirs = detectron2_dconv(cfg)
    _randomize(theirs, seed=3, offset_std=0.05)  # non-zero offsets (and masks)
    ours = build_dcn_resnet_backbone(cfg, INPUT)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = _image(3)
    with torch.no_grad():
        offsets = ours.double().res3[0].conv2_offset(ours.res3[0].conv1(ours.res2(ours.stem(x))))
    assert offsets.abs().max() > 0.1  # the offsets really move the samples
    _assert_same_outputs(ours, theirs, x)


# --- ImageNet-style checkpoints (plain ResNet weights) into a DCN detector -------------------

DCN_FASTER_RCNN = str(Path(__file__).resolve().parents[2] / "configs/COCO-Detection/faster_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x.yaml")
SMALL = [
    "MODEL.DEVICE", "cpu",
    "MODEL.WEIGHTS", "",
    "MODEL.RESNETS.STEM_OUT_CHANNELS", "16",
    "MODEL.RESNETS.RES2_OUT_CHANNELS", "32",
    "MODEL.RESNETS.WIDTH_PER_GROUP", "8",
    "MODEL.FPN.OUT_CHANNELS", "16",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "32",
    "MODEL.DCN.POOL_OFFSET_FC_DIMS", "[32, 32]",
]


def _save_imagenet_style(resnet, tmp_path, kind):
    """Plain ResNet weights under detectron2's ResNet names (stem.conv1.weight,
    res2.0.conv1.weight, ...), as ImageNet checkpoints converted for detectron2 are.
    Returns the path to give DetectionCheckpointer."""
    state = {k: v.detach().clone() for k, v in resnet.state_dict().items()}
    if kind == "pkl":  # tools/convert-torchvision-to-d2.py's format
        path = tmp_path / "R-50-imagenet.pkl"
        with open(path, "wb") as f:
            pickle.dump({"model": {k: v.numpy() for k, v in state.items()}, "__author__": "torchvision", "matching_heuristics": True}, f)
        return str(path)
    path = tmp_path / "R-50-imagenet.pth"
    torch.save(state, path)
    return f"{path}?matching_heuristics=True"


@pytest.mark.parametrize("kind", ["pkl", "pth"])
def test_imagenet_style_resnet_weights_load_into_a_dcn_faster_rcnn(tmp_path, monkeypatch, kind):
    cfg = build_cfg(DCN_FASTER_RCNN, SMALL)
    resnet = d2_resnet.build_resnet_backbone(_plain(cfg), INPUT)
    _randomize(resnet, seed=4)
    path = _save_imagenet_style(resnet, tmp_path, kind)

    model = build_model(cfg)
    checkpointer = DetectionCheckpointer(model)
    reported = []
    monkeypatch.setattr(checkpointer, "_log_incompatible_keys", reported.append)
    checkpointer.load(path)

    (incompatible,) = reported
    assert incompatible.unexpected_keys == []
    assert incompatible.incorrect_shapes == []
    bottom_up = "backbone.bottom_up."
    missing_backbone = {k for k in incompatible.missing_keys if k.startswith(bottom_up)}
    assert missing_backbone == {bottom_up + k for k in _offset_keys(model.backbone.bottom_up)}
    assert missing_backbone  # the deformable blocks are there
    assert any(k.startswith("roi_heads.") for k in incompatible.missing_keys)
    loaded = model.backbone.bottom_up.state_dict()
    for key, value in resnet.state_dict().items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)
    assert all(v.abs().sum() == 0 for k, v in loaded.items() if "conv2_offset" in k)


# --- detectron2's own dconv configs (configs/Misc/*dconv*) -----------------------------------

# The content of detectron2's configs/Misc/mask_rcnn_R_50_FPN_1x_dconv_c3-c5.yaml.
MISC_DCONV_YAML = """\
_BASE_: "{base}"
MODEL:
  WEIGHTS: "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
  MASK_ON: True
  RESNETS:
    DEPTH: 50
    DEFORM_ON_PER_STAGE: [False, True, True, True] # on Res3,Res4,Res5
    DEFORM_MODULATED: {modulated}
"""


@pytest.mark.parametrize("modulated", [False, True], ids=["dconv", "mdconv"])
def test_detectron2_misc_dconv_config_builds_with_dcn_det_blocks_and_runs_on_cpu(tmp_path, modulated):
    config = tmp_path / "mask_rcnn_R_50_FPN_1x_dconv_c3-c5.yaml"
    config.write_text(MISC_DCONV_YAML.format(base=model_zoo.get_config_file("Base-RCNN-FPN.yaml"), modulated=modulated))
    # Fewer proposals and detections only to keep the test fast; the architecture is the config's.
    cfg = build_cfg(str(config), ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.RPN.POST_NMS_TOPK_TEST", "50", "TEST.DETECTIONS_PER_IMAGE", "10"])
    assert cfg.MODEL.BACKBONE.NAME == "build_dcn_resnet_fpn_backbone"
    assert cfg.MODEL.ROI_HEADS.NAME == "DeformStandardROIHeads"

    model = build_model(cfg).eval()
    assert isinstance(model.roi_heads, DeformStandardROIHeads)
    blocks = _deformable_stage_blocks(model.backbone.bottom_up)
    assert blocks == {"res2": [], "res3": [0, 1, 2, 3], "res4": list(range(6)), "res5": [0, 1, 2]}
    assert isinstance(model.backbone.bottom_up.res3[0].conv2, dcn_det.layers.ModulatedDeformConv if modulated else dcn_det.layers.DeformConv)

    image = torch.randint(0, 256, (3, 96, 128), generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():
        (output,) = model([{"image": image, "height": 96, "width": 128}])
    instances = output["instances"]
    assert instances.image_size == (96, 128)
    assert instances.has("pred_masks")


def test_detectron2_c4_config_with_deformable_res5_builds_dcn_det_res5_head():
    cfg = build_cfg(
        model_zoo.get_config_file("Base-RCNN-C4.yaml"),
        ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.MASK_ON", "False", "MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, False, False, True]"],
    )
    model = build_model(cfg)
    assert isinstance(model.roi_heads, DeformRes5ROIHeads)
    assert all(isinstance(b, DeformBottleneck) for b in model.roi_heads.res5)
    assert not any(isinstance(m, DeformBottleneck) for m in model.backbone.modules())


# The model-relevant part of detectron2's configs/Misc/cascade_mask_rcnn_X_152_32x8d_FPN_IN5k_gn_dconv.yaml.
MISC_X152_DCONV_YAML = """\
_BASE_: "{base}"
MODEL:
  MASK_ON: True
  WEIGHTS: "catalog://ImageNetPretrained/FAIR/X-152-32x8d-IN5k"
  RESNETS:
    STRIDE_IN_1X1: False  # this is a C2 model
    NUM_GROUPS: 32
    WIDTH_PER_GROUP: 8
    DEPTH: 152
    DEFORM_ON_PER_STAGE: [False, True, True, True]
  ROI_HEADS:
    NAME: "CascadeROIHeads"
  ROI_BOX_HEAD:
    NAME: "FastRCNNConvFCHead"
    NUM_CONV: 4
    NUM_FC: 1
    NORM: "GN"
    CLS_AGNOSTIC_BBOX_REG: True
  ROI_MASK_HEAD:
    NUM_CONV: 8
    NORM: "GN"
"""


def test_detectron2_resnext_dconv_cascade_config_builds_grouped_deformable_blocks(tmp_path):
    config = tmp_path / "cascade_mask_rcnn_X_152_32x8d_FPN_IN5k_gn_dconv.yaml"
    config.write_text(MISC_X152_DCONV_YAML.format(base=model_zoo.get_config_file("Base-RCNN-FPN.yaml")))
    cfg = build_cfg(str(config), ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"])
    assert (cfg.MODEL.BACKBONE.NAME, cfg.MODEL.ROI_HEADS.NAME) == ("build_dcn_resnet_fpn_backbone", "DeformCascadeROIHeads")
    bottom_up = build_model(cfg).backbone.bottom_up
    blocks = _deformable_stage_blocks(bottom_up)
    assert [len(blocks[f"res{i}"]) for i in (2, 3, 4, 5)] == [0, 8, 36, 3]
    first = bottom_up.res3[0]
    assert first.conv2.groups == 32 and first.conv2.stride == first.conv2_offset.stride == (2, 2)


def test_detectron2_retinanet_config_with_deformable_stages_builds_dcn_det_blocks():
    cfg = build_cfg(
        model_zoo.get_config_file("COCO-Detection/retinanet_R_50_FPN_1x.yaml"),
        ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, True, True, True]",
         "MODEL.RESNETS.DEFORM_MODULATED", "True"],
    )
    assert cfg.MODEL.BACKBONE.NAME == "build_dcn_retinanet_resnet_fpn_backbone"
    backbone = build_model(cfg).backbone
    assert list(backbone.output_shape()) == ["p3", "p4", "p5", "p6", "p7"]  # RetinaNet's levels
    blocks = _deformable_stage_blocks(backbone.bottom_up)
    assert blocks == {"res2": [], "res3": [0, 1, 2, 3], "res4": list(range(6)), "res5": [0, 1, 2]}
    assert isinstance(backbone.bottom_up.res3[0].conv2, dcn_det.layers.ModulatedDeformConv)


@pytest.mark.parametrize("modulated", [False, True], ids=["dcnv1", "dcnv2"])
def test_model_dcn_border_reaches_every_deformable_conv(modulated):
    """MODEL.DCN.BORDER picks the sampling rule of every deformable conv (default dcnv2); with
    offsets that reach the border, "dcnv1" changes the backbone's output."""
    cfg = _cfg(modulated=modulated)
    default = build_dcn_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    cfg.MODEL.DCN.BORDER = "dcnv1"
    original = build_dcn_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    original.load_state_dict(default.state_dict())
    borders = {name: m.border for name, m in original.named_modules() if isinstance(m, dcn_det.layers.DeformConv)}
    assert borders and set(borders.values()) == {"dcnv1"}
    assert {m.border for m in default.modules() if isinstance(m, dcn_det.layers.DeformConv)} == {"dcnv2"}
    torch.manual_seed(0)
    for m in default.modules():
        if isinstance(m, DeformBottleneck):
            nn.init.normal_(m.conv2_offset.weight, std=0.5)
    original.load_state_dict(default.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = default(x)["res5"], original(x)["res5"]
    assert (a - b).abs().max() > 1e-3 * a.abs().max()


def test_stem_pool_ceil_mode_is_the_original_networks_pool():
    """MODEL.RESNETS.STEM_POOL_CEIL_MODE: padding 0, ceil mode (MXNet's pooling_convention
    "full"): out = ceil((387 - 3) / 2) + 1 = 193 where detectron2's pad 1 gives 194; same
    parameters, so a checkpoint of one loads into the other."""
    cfg = _cfg(deform_on=(False, False, False, True))
    default = build_dcn_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    cfg.MODEL.RESNETS.STEM_POOL_CEIL_MODE = True
    original = build_dcn_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    original.load_state_dict(default.state_dict())
    assert set(original.state_dict()) == set(default.state_dict())
    x = torch.randn(1, 3, 774, 40)
    with torch.no_grad():
        stem_in = torch.relu(default.stem.conv1(x))  # 387 x 20
        assert stem_in.shape[-2:] == (387, 20)
        got = original.stem(x)
        assert got.shape[-2:] == (193, 10) and default.stem(x).shape[-2:] == (194, 10)
        # Each output is the max of its 3x3 window starting at 2*i, 2*j (the last window of
        # the 20 columns, starting at 18, covers columns 18-19 only).
        for i, j in [(0, 0), (96, 4), (192, 9)]:
            window = stem_in[0, :, 2 * i: 2 * i + 3, 2 * j: 2 * j + 3]
            torch.testing.assert_close(got[0, :, i, j], window.amax(dim=(1, 2)))
        assert original(x)["res5"].shape[-2:] == (25, 2)  # 193 -> 97 -> 49 -> 25, 10 -> 5 -> 3 -> 2
