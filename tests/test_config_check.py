"""dcn_det.config.check_cfg: each bad value is one line naming the key, before anything is
built; every shipped config passes."""
from pathlib import Path

import pytest

from dcn_det.config import ConfigError, check_cfg
from dcn_det.engine import build_cfg

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FPN = str(CONFIGS / "COCO-Detection" / "faster_rcnn_R_50_FPN_1x.yaml")
C4 = str(CONFIGS / "COCO-Detection" / "faster_rcnn_R_101_C4_1x.yaml")
RFCN = str(CONFIGS / "COCO-Detection" / "rfcn_R_101_1x.yaml")
SHIPPED = sorted(p for p in CONFIGS.rglob("*.yaml") if not p.name.startswith("Base"))


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_passes(config):
    check_cfg(build_cfg(str(config)))


BAD = [
    (FPN, ["MODEL.DCN.POOL", "roialign"], r'MODEL.DCN.POOL must be "", "dpool" or "mdpool", got \'roialign\''),
    (FPN, ["MODEL.DCN.BORDER", "mxnet"], r'MODEL.DCN.BORDER must be "dcnv2" or "dcnv1", got \'mxnet\''),
    (FPN, ["MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, True, True]"], r"MODEL.RESNETS.DEFORM_ON_PER_STAGE needs 4 entries .* got 3"),
    (FPN, ["MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE", "[-1, -1]"], r"MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE needs 4 entries"),
    (FPN, ["MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE", "[-1, -1, 0, -1]"], r"DEFORM_LAST_BLOCKS_PER_STAGE\[2\] must be -1 \(all blocks\) or >= 1, got 0"),
    # res3's 3x3 convs have 1 x 64 x 2 = 128 channels: 3 offset groups cannot split them.
    (FPN, ["MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, True, True, True]", "MODEL.RESNETS.DEFORM_NUM_GROUPS", "3"],
     r"MODEL.RESNETS.DEFORM_NUM_GROUPS \(3\) must divide the channels of the deformable convs of res3 \(128 ="),
    (FPN, ["MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, False, False, True]", "MODEL.RESNETS.DEFORM_NUM_GROUPS", "0"],
     r"MODEL.RESNETS.DEFORM_NUM_GROUPS must be >= 1, got 0"),
    (FPN, ["MODEL.RESNETS.DEFORM_MODULATED", "True"], r"MODEL.RESNETS.DEFORM_MODULATED is True but no stage is deformable"),
    (FPN, ["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64", "MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, False, False, True]"],
     r"deformable convs need bottleneck blocks \(MODEL.RESNETS.DEPTH >= 50\), got DEPTH 18"),
    (FPN, ["MODEL.ROI_HEADS.NAME", "StandardROIHeads", "MODEL.DCN.POOL", "dpool"], r"MODEL.DCN.POOL 'dpool' needs ROI heads with a deformable box pooler .* 'StandardROIHeads'"),
    (C4, ["MODEL.ROI_HEADS.NAME", "NoSuchHeads", "MODEL.DCN.POOL", "mdpool"], r"MODEL.ROI_HEADS.NAME is 'NoSuchHeads'"),
    (FPN, ["MODEL.DCN.POOL", "dpool", "MODEL.DCN.POOL_SAMPLE_PER_PART", "0"], r"MODEL.DCN.POOL_SAMPLE_PER_PART must be >= 1, got 0"),
    (FPN, ["MODEL.ROI_HEADS.NAME", "RFCNROIHeads"], r"R-FCN pools one single-scale feature map .* 'build_dcn_resnet_fpn_backbone'"),
    (RFCN, ["MODEL.ROI_HEADS.IN_FEATURES", "['res4', 'res5']"], r"R-FCN pools one single-scale feature map .*\['res4', 'res5'\]"),
    (RFCN, ["MODEL.RFCN.GROUP_SIZE", "0"], r"MODEL.RFCN.GROUP_SIZE \(k, the k x k position-sensitive bins\) must be >= 1, got 0"),
    (RFCN, ["MODEL.RFCN.DEFORMABLE", "True", "MODEL.RFCN.SAMPLE_PER_PART", "0"], r"MODEL.RFCN.SAMPLE_PER_PART must be >= 1, got 0"),
    (RFCN, ["MODEL.RFCN.MODULATED", "True"], r"MODEL.RFCN.MODULATED needs MODEL.RFCN.DEFORMABLE"),
    (FPN, ["SOLVER.DCN_OFFSET_LR_FACTOR", "0.0"], r"SOLVER.DCN_OFFSET_LR_FACTOR must be > 0, got 0.0"),
]


@pytest.mark.parametrize("config, opts, message", BAD, ids=[" ".join(opts[-2:]) for _, opts, _ in BAD])
def test_a_bad_value_is_one_line_naming_the_key(config, opts, message):
    cfg = build_cfg(config, opts)  # building the config itself does not object
    with pytest.raises(ConfigError, match=message) as error:
        check_cfg(cfg)
    assert "\n" not in str(error.value)
    assert isinstance(error.value, ValueError)


def test_deformable_groups_that_divide_every_deformable_stage_pass():
    # 64 x 2^i channels at res2..res5: 4 divides them all, and 32 too.
    for groups in ("4", "32"):
        check_cfg(build_cfg(FPN, ["MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[True, True, True, True]", "MODEL.RESNETS.DEFORM_NUM_GROUPS", groups]))
