"""dcn_det.config: the keys add_dcn_config adds, and use_dcn_builders."""
import pytest
from detectron2.config import get_cfg

import dcn_det
from dcn_det.config import add_dcn_config, use_dcn_builders

# Every key dcn_det adds, with its documented default.
DEFAULTS = {
    "MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE": [-1, -1, -1, -1],
    "MODEL.DCN.BORDER": "dcnv2",
    "MODEL.DCN.OFFSET_CONV_DILATION": 0,
    "MODEL.ROI_HEADS.SOFT_NMS_METHOD": "",
    "MODEL.ROI_HEADS.SOFT_NMS_SIGMA": 0.5,
    "MODEL.ROI_HEADS.SOFT_NMS_PRUNE": 0.001,
    "MODEL.ROI_HEADS.SOFT_NMS_PLUS_ONE_IOU": False,
    "MODEL.DCN.POOL_OFFSET_PER_LEVEL": False,
    "MODEL.FPN.TOP_BLOCK": "maxpool",
    "MODEL.RESNETS.STEM_POOL_CEIL_MODE": False,
    "MODEL.RFCN.POOL_PLUS_ONE_BOXES": False,
    "MODEL.RFCN.INTEGER_BINS": False,
    "MODEL.RPN.DROP_PARTIAL_CELLS": False,
    "MODEL.RPN.PROPOSAL_RULES": "detectron2",
    "MODEL.ROI_HEADS.CLIP_PLUS_ONE": False,
    "MODEL.ROI_BOX_HEAD.REDUCE_CONV_DIM": 0,
    "MODEL.ROI_BOX_HEAD.POOL_PLUS_ONE_BOXES": False,
    "MODEL.DCN.POOL": "",
    "MODEL.DCN.POOL_TRANS_STD": 0.1,
    "MODEL.DCN.POOL_SAMPLE_PER_PART": 4,
    "MODEL.DCN.POOL_OFFSET_FC_DIMS": [1024, 1024],
    "MODEL.DCN.POOL_PART_SIZE": 0,
    "MODEL.RFCN.GROUP_SIZE": 7,
    "MODEL.RFCN.HIDDEN_DIM": 1024,
    "MODEL.RFCN.DEFORMABLE": False,
    "MODEL.RFCN.CLASS_AGNOSTIC_OFFSETS": False,
    "MODEL.RFCN.MODULATED": False,
    "MODEL.RFCN.TRANS_STD": 0.1,
    "MODEL.RFCN.SAMPLE_PER_PART": 4,
    "MODEL.RFCN.OHEM_ROIS": 0,
    "MODEL.RFCN.BBOX_REG_LOSS_TYPE": "smooth_l1",
    "MODEL.RFCN.SMOOTH_L1_BETA": 0.0,
    "MODEL.RFCN.HEAD_INIT_STD": 0.01,
    "MODEL.RFCN.HIDDEN_INIT": "normal",
    "MODEL.RFCN.HEAD_LR_FACTOR": 1.0,
    "SOLVER.OPTIMIZER": "SGD",
    "SOLVER.DCN_OFFSET_LR_FACTOR": 1.0,
    "SOLVER.PARAM_LR_FACTORS": [],
}
# detectron2's DeepLab project keys (detectron2.projects.deeplab.add_deeplab_config), added
# with the project's defaults so that DeepLab configs merge.
DEEPLAB_DEFAULTS = {
    "INPUT.CROP.SINGLE_CATEGORY_MAX_AREA": 1.0,
    "SOLVER.POLY_LR_POWER": 0.9,
    "SOLVER.POLY_LR_CONSTANT_ENDING": 0.0,
    "MODEL.SEM_SEG_HEAD.LOSS_TYPE": "hard_pixel_mining",
    "MODEL.SEM_SEG_HEAD.PROJECT_FEATURES": ["res2"],
    "MODEL.SEM_SEG_HEAD.PROJECT_CHANNELS": [48],
    "MODEL.SEM_SEG_HEAD.ASPP_CHANNELS": 256,
    "MODEL.SEM_SEG_HEAD.ASPP_DILATIONS": [6, 12, 18],
    "MODEL.SEM_SEG_HEAD.ASPP_DROPOUT": 0.1,
    "MODEL.SEM_SEG_HEAD.USE_DEPTHWISE_SEPARABLE_CONV": False,
    "MODEL.RESNETS.RES4_DILATION": 1,
    "MODEL.RESNETS.RES5_MULTI_GRID": [1, 2, 4],
    "MODEL.RESNETS.STEM_TYPE": "deeplab",
}


def _get(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _flat_keys(node, prefix):
    out = set()
    for key, value in node.items():
        if hasattr(value, "items"):
            out |= _flat_keys(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


def test_add_dcn_config_is_exported_at_package_level():
    assert dcn_det.add_dcn_config is add_dcn_config


def test_add_dcn_config_adds_every_key_with_its_default():
    cfg = add_dcn_config(get_cfg())
    for key, default in DEFAULTS.items():
        assert _get(cfg, key) == default, key


def test_add_dcn_config_adds_the_deeplab_project_keys_with_their_defaults():
    cfg = add_dcn_config(get_cfg())
    for key, default in DEEPLAB_DEFAULTS.items():
        assert _get(cfg, key) == default, key


def test_add_dcn_config_adds_no_undocumented_key():
    added = _flat_keys(add_dcn_config(get_cfg()), "") - _flat_keys(get_cfg(), "")
    assert added == set(DEFAULTS) | set(DEEPLAB_DEFAULTS)


def test_add_dcn_config_leaves_detectron2_keys_unchanged():
    plain = get_cfg()
    cfg = add_dcn_config(get_cfg())
    for key in _flat_keys(plain, ""):
        assert _get(cfg, key) == _get(plain, key), key


def test_add_dcn_config_keeps_deeplab_keys_a_config_already_has():
    cfg = get_cfg()
    cfg.SOLVER.POLY_LR_POWER = 2.0
    assert add_dcn_config(cfg).SOLVER.POLY_LR_POWER == 2.0


def test_add_dcn_config_returns_the_cfg_it_modified():
    cfg = get_cfg()
    assert add_dcn_config(cfg) is cfg


def test_add_dcn_config_twice_keeps_changed_values():
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.DCN.POOL = "mdpool"
    cfg.MODEL.DCN.POOL_OFFSET_FC_DIMS = [256]
    cfg.MODEL.RFCN.OHEM_ROIS = 128
    add_dcn_config(cfg)
    assert cfg.MODEL.DCN.POOL == "mdpool"
    assert cfg.MODEL.DCN.POOL_OFFSET_FC_DIMS == [256]
    assert cfg.MODEL.RFCN.OHEM_ROIS == 128
    assert cfg.MODEL.RFCN.GROUP_SIZE == 7


def test_add_dcn_config_fills_in_keys_missing_from_a_partial_section():
    cfg = add_dcn_config(get_cfg())
    del cfg.MODEL.DCN["POOL_TRANS_STD"]
    cfg.MODEL.DCN.POOL = "dpool"
    add_dcn_config(cfg)
    assert cfg.MODEL.DCN.POOL_TRANS_STD == 0.1
    assert cfg.MODEL.DCN.POOL == "dpool"


def test_new_keys_can_be_overridden_from_the_command_line():
    cfg = add_dcn_config(get_cfg())
    cfg.merge_from_list(["MODEL.DCN.POOL", "dpool", "MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE", "[-1, -1, -1, 3]"])
    assert cfg.MODEL.DCN.POOL == "dpool"
    assert list(cfg.MODEL.DCN.DEFORM_LAST_BLOCKS_PER_STAGE) == [-1, -1, -1, 3]


def _detectron2_cfg(backbone, roi_heads, deform_on):
    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.BACKBONE.NAME = backbone
    cfg.MODEL.ROI_HEADS.NAME = roi_heads
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = deform_on
    return cfg


@pytest.mark.parametrize(
    "backbone, roi_heads, expected_backbone, expected_roi_heads",
    [
        ("build_resnet_fpn_backbone", "StandardROIHeads", "build_dcn_resnet_fpn_backbone", "DeformStandardROIHeads"),
        ("build_resnet_backbone", "Res5ROIHeads", "build_dcn_resnet_backbone", "DeformRes5ROIHeads"),
        ("build_resnet_backbone", "StandardROIHeads", "build_dcn_resnet_backbone", "DeformStandardROIHeads"),
        ("build_resnet_fpn_backbone", "CascadeROIHeads", "build_dcn_resnet_fpn_backbone", "DeformCascadeROIHeads"),
        ("build_retinanet_resnet_fpn_backbone", "StandardROIHeads", "build_dcn_retinanet_resnet_fpn_backbone", "DeformStandardROIHeads"),
        ("build_resnet_deeplab_backbone", "StandardROIHeads", "build_dcn_resnet_deeplab_backbone", "DeformStandardROIHeads"),
    ],
)
def test_use_dcn_builders_switches_detectron2_names_when_a_stage_is_deformable(
    backbone, roi_heads, expected_backbone, expected_roi_heads
):
    cfg = use_dcn_builders(_detectron2_cfg(backbone, roi_heads, [False, True, True, True]))
    assert cfg.MODEL.BACKBONE.NAME == expected_backbone
    assert cfg.MODEL.ROI_HEADS.NAME == expected_roi_heads


def test_use_dcn_builders_switches_for_a_single_deformable_stage():
    cfg = use_dcn_builders(_detectron2_cfg("build_resnet_backbone", "Res5ROIHeads", [False, False, False, True]))
    assert (cfg.MODEL.BACKBONE.NAME, cfg.MODEL.ROI_HEADS.NAME) == ("build_dcn_resnet_backbone", "DeformRes5ROIHeads")


def test_use_dcn_builders_keeps_detectron2_names_without_deformable_stages():
    cfg = _detectron2_cfg("build_resnet_fpn_backbone", "StandardROIHeads", [False, False, False, False])
    use_dcn_builders(cfg)
    assert (cfg.MODEL.BACKBONE.NAME, cfg.MODEL.ROI_HEADS.NAME) == ("build_resnet_fpn_backbone", "StandardROIHeads")


def test_use_dcn_builders_keeps_names_it_has_no_equivalent_for():
    cfg = _detectron2_cfg("my_backbone", "MyROIHeads", [False, True, True, True])
    use_dcn_builders(cfg)
    assert (cfg.MODEL.BACKBONE.NAME, cfg.MODEL.ROI_HEADS.NAME) == ("my_backbone", "MyROIHeads")


def test_use_dcn_builders_keeps_dcn_det_names():
    cfg = _detectron2_cfg("build_dcn_resnet_backbone", "RFCNROIHeads", [False, True, True, True])
    use_dcn_builders(cfg)
    assert (cfg.MODEL.BACKBONE.NAME, cfg.MODEL.ROI_HEADS.NAME) == ("build_dcn_resnet_backbone", "RFCNROIHeads")


def test_use_dcn_builders_changes_nothing_else():
    cfg = _detectron2_cfg("build_resnet_fpn_backbone", "StandardROIHeads", [False, True, True, True])
    expected = cfg.clone()
    expected.MODEL.BACKBONE.NAME = "build_dcn_resnet_fpn_backbone"
    expected.MODEL.ROI_HEADS.NAME = "DeformStandardROIHeads"
    assert use_dcn_builders(cfg) == expected
