"""Every YAML under configs/ merges with dcn_det.engine.build_cfg and builds the model its name
promises (full size, on CPU, from scratch). The expectations come from the file name, not
from the merged config, so a config that silently lost an option fails here."""
import re
from pathlib import Path

import pytest
from detectron2.modeling import build_model
from detectron2.modeling.poolers import ROIPooler

from dcn_det.engine import build_cfg
from dcn_det.layers import DeformConv, DeformPSRoIPool, DeformRoIPool, ModulatedDeformConv, ModulatedDeformRoIPool
from dcn_det.modeling import (
    DeformBottleneck,
    DeformCascadeROIHeads,
    DeformROIPooler,
    DeformRes5ROIHeads,
    DeformStandardROIHeads,
    RFCNROIHeads,
)

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
# configs/Original (the authors' released networks, inference only) do not follow the
# model-zoo naming: tests/modeling/test_original_configs.py and tests/verify_mxnet/ check them.
CONFIGS = sorted(p for p in CONFIG_ROOT.rglob("*.yaml") if p.parent.name != "Original")
# Blocks per stage res2..res5 (R-103: R-101 with the DeepLab stem).
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 103: (3, 4, 23, 3)}
# Families without ROI heads.
DENSE = ("retinanet", "deeplab")


def _id(path):
    return str(path.relative_to(CONFIG_ROOT))


# Configs whose name does not follow the model-zoo convention: their intent, spelled out.
DEMO = {
    "Base-Demo-FPN.yaml": "faster_rcnn_R_50_FPN",
    "faster_rcnn_plain.yaml": "faster_rcnn_R_50_FPN",
    "faster_rcnn_dcnv1.yaml": "faster_rcnn_R_50_FPN_dconv_c3-c5_dpool",
    "faster_rcnn_dcnv2.yaml": "faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool",
    "Base-Demo-RFCN.yaml": "rfcn_R_50",
    "rfcn_plain.yaml": "rfcn_R_50",
    "rfcn_dcnv2.yaml": "rfcn_R_50_mdconv_c3-c5_mdpsroi",
}
BASES = {
    "Base-DCN-RCNN-FPN.yaml": "faster_rcnn_R_50_FPN",
    "Base-DCN-RCNN-C4.yaml": "faster_rcnn_R_50_C4",
    "Base-DCN-RFCN.yaml": "rfcn_R_50",
    "Base-DCN-RetinaNet.yaml": "retinanet_R_50_FPN",
    "Base-DCN-DeepLabV3.yaml": "deeplab_v3_R_103",
}
NUM_CLASSES = {
    "PascalVOC-Detection": 20,
    "Demo": 7,
    "Cityscapes-SemanticSegmentation": 19,
    "PascalVOC-SemanticSegmentation": 21,
}


def _intent(path):
    """What the file name promises (model-zoo naming: family, depth, [m]dconv_cX[-cY],
    dpool / mdpool, dpsroi / mdpsroi; data set from the folder)."""
    dataset = path.parent.name
    if dataset == "Demo":
        assert path.name in DEMO, f"{_id(path)}: add its intent to DEMO"
        name = DEMO[path.name]
    else:
        name = BASES.get(path.name, path.name)
    match = re.search(r"(m?)dconv_c(\d)(?:-c(\d))?", name)
    stages = set()
    if match:
        first = int(match.group(2))
        stages = set(range(first, int(match.group(3) or first) + 1))
    pool = "mdpool" if "mdpool" in name else ("dpool" if "dpool" in name else "")
    psroi = "modulated" if "mdpsroi" in name else ("deformable" if "dpsroi" in name else "")
    family = next((f for f in ("rfcn", "retinanet", "cascade", "deeplab") if name.startswith(f)), None)
    family = family or ("c4" if "_C4" in name else "fpn")
    return {
        "family": family,
        "depth": int(re.search(r"_R_(\d+)", name).group(1)),
        "stages": stages,
        "modulated": bool(match and match.group(1)),
        "pool": pool,
        "psroi": psroi,
        "mask": name.startswith("mask_rcnn"),
        # detectron2's defaults in the bases: 80 (COCO things), 54 (COCO stuff) for DeepLab's.
        "num_classes": NUM_CLASSES.get(dataset, 54 if name.startswith("deeplab") else 80),
        "weights": path.name not in BASES and dataset != "Demo",
    }


def _configs(**wanted):
    return [p for p in CONFIGS if all(_intent(p)[k] == v for k, v in wanted.items())]


@pytest.fixture(scope="module", params=CONFIGS, ids=_id)
def built(request):
    path = request.param
    cfg = build_cfg(str(path), ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    return path, _intent(path), cfg, build_model(cfg)


def test_config_folder_has_every_family_plain_dcnv1_and_dcnv2():
    names = {p.name for p in CONFIGS}
    for stem in (
        "faster_rcnn_R_50_FPN_1x",
        "faster_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x",
        "faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x",
        "faster_rcnn_R_101_C4_1x",
        "faster_rcnn_R_101_C4_dconv_c5_dpool_1x",
        "rfcn_R_101_1x",
        "rfcn_R_101_dconv_c5_dpsroi_1x",
        "rfcn_R_101_mdconv_c3-c5_mdpsroi_1x",
    ):
        assert stem + ".yaml" in names
        assert stem.replace("_1x", "") + ".yaml" in names  # the VOC variant
    for stem in (
        "mask_rcnn_R_50_FPN_1x",
        "mask_rcnn_R_50_FPN_dconv_c3-c5_1x",
        "mask_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x",
        "cascade_rcnn_R_50_FPN_1x",
        "cascade_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x",
        "cascade_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x",
        "retinanet_R_50_FPN_1x",
        "retinanet_R_50_FPN_dconv_c3-c5_1x",
        "retinanet_R_50_FPN_mdconv_c3-c5_1x",
        "deeplab_v3_R_103_os16_mg124_poly_90k_bs16",  # Cityscapes
        "deeplab_v3_R_103_os16_mg124_poly_90k_bs16_dconv_c5",
        "deeplab_v3_R_103_os16_mg124_poly_30k_bs16",  # VOC 2012
        "deeplab_v3_R_103_os16_mg124_poly_30k_bs16_dconv_c5",
    ):
        assert stem + ".yaml" in names


def _stage_blocks(model, intent):
    """{stage index: list of blocks} for res2..res5, wherever the stage lives."""
    backbone = model.backbone.bottom_up if intent["family"] in ("fpn", "cascade", "retinanet") else model.backbone
    stages = {int(name[3:]): list(stage) for name, stage in zip(backbone.stage_names, backbone.stages)}
    if intent["family"] == "c4":
        assert 5 not in stages, "C4: res5 belongs to the ROI heads"
        stages[5] = list(model.roi_heads.res5)
    return stages


def test_builds_with_the_configured_depth(built):
    _, intent, _, model = built
    stages = _stage_blocks(model, intent)
    assert tuple(len(stages[i]) for i in (2, 3, 4, 5)) == BLOCKS[intent["depth"]]


def test_deformable_blocks_are_exactly_in_the_named_stages(built):
    _, intent, _, model = built
    for index, blocks in _stage_blocks(model, intent).items():
        deformable = [isinstance(b, DeformBottleneck) for b in blocks]
        assert all(deformable) if index in intent["stages"] else not any(deformable), f"res{index}: {deformable}"


def test_deformable_blocks_are_v1_or_v2_as_named(built):
    _, intent, cfg, model = built
    groups = cfg.MODEL.RESNETS.DEFORM_NUM_GROUPS
    for blocks in _stage_blocks(model, intent).values():
        for block in blocks:
            if not isinstance(block, DeformBottleneck):
                continue
            if intent["modulated"]:
                assert type(block.conv2) is ModulatedDeformConv
                assert block.conv2_offset.out_channels == 27 * groups
            else:
                assert type(block.conv2) is DeformConv
                assert block.conv2_offset.out_channels == 18 * groups


def test_box_pooler_is_deformable_only_where_named(built):
    _, intent, _, model = built
    if intent["family"] in ("rfcn",) + DENSE:
        assert not any(isinstance(m, (DeformROIPooler, DeformRoIPool)) for m in model.modules())
        return
    heads = model.roi_heads
    pooler = heads.pooler if intent["family"] == "c4" else heads.box_pooler
    if intent["family"] == "cascade" and intent["pool"]:
        assert len(pooler) == heads.num_cascade_stages == 3  # one deformable pooler per stage
        assert len({id(p.pool) for p in pooler}) == 3
        pooler = pooler[0]
    if intent["pool"]:
        assert isinstance(pooler, DeformROIPooler)
        assert isinstance(pooler.pool, ModulatedDeformRoIPool) == (intent["pool"] == "mdpool")
    else:
        assert isinstance(pooler, ROIPooler)


def test_roi_heads_class_matches_the_family(built):
    _, intent, _, model = built
    if intent["family"] in DENSE:
        assert not hasattr(model, "roi_heads")
        return
    expected = {"fpn": DeformStandardROIHeads, "c4": DeformRes5ROIHeads, "rfcn": RFCNROIHeads, "cascade": DeformCascadeROIHeads}
    assert type(model.roi_heads) is expected[intent["family"]]


def test_mask_head_only_in_mask_rcnn_configs(built):
    _, intent, _, model = built
    heads = getattr(model, "roi_heads", None)
    assert getattr(heads, "mask_on", False) == intent["mask"]
    if intent["mask"]:
        assert heads.mask_pooler.output_size == (14, 14) and len(heads.mask_head.mask_fcn1.weight) == 256


def test_meta_architecture_matches_the_family(built):
    _, intent, _, model = built
    expected = {"retinanet": "RetinaNet", "deeplab": "SemanticSegmentor"}.get(intent["family"], "GeneralizedRCNN")
    assert type(model).__name__ == expected


@pytest.mark.parametrize("built", _configs(family="deeplab"), ids=_id, indirect=True)
def test_deeplab_res5_is_dilated_multi_grid_at_stride_16_deformable_or_not(built):
    _, intent, _, model = built
    assert model.backbone.output_shape()["res5"].stride == 16
    assert [block.conv2.dilation for block in model.backbone.res5] == [(2, 2), (4, 4), (8, 8)]
    assert type(model.sem_seg_head).__name__ in ("DeepLabV3Head", "DeepLabV3GlobalPoolHead")
    assert [isinstance(b, DeformBottleneck) for b in model.backbone.res5] == [5 in intent["stages"]] * 3


def test_pooler_scales_and_size_match_the_features(built):
    _, intent, _, model = built
    if intent["family"] in DENSE:
        return
    heads = model.roi_heads
    if intent["family"] == "rfcn":
        assert (heads.spatial_scale, heads.group_size) == (1 / 16, 7)
        return
    pooler = heads.pooler if intent["family"] == "c4" else heads.box_pooler
    if intent["family"] == "cascade" and intent["pool"]:
        pooler = pooler[-1]
    if isinstance(pooler, DeformROIPooler):
        scales, size = list(pooler.scales), pooler.output_size
    else:
        scales, size = [level.spatial_scale for level in pooler.level_poolers], pooler.output_size[0]
    assert (scales, size) == ([1 / 16], 14) if intent["family"] == "c4" else ([1 / 4, 1 / 8, 1 / 16, 1 / 32], 7)


@pytest.mark.parametrize("built", _configs(family="c4", pool="dpool"), ids=_id, indirect=True)
def test_c4_dpool_pools_14x14_with_a_7x7_offset_grid_from_one_fc(built):
    pool = built[3].roi_heads.pooler.pool
    assert (pool.output_size, pool.part_size) == (14, 7)
    assert len([m for m in pool.offset_fc if hasattr(m, "weight")]) == 1


@pytest.mark.parametrize("built", _configs(family="rfcn"), ids=_id, indirect=True)
def test_rfcn_has_deformable_psroi_pools_only_where_named(built):
    _, intent, _, model = built
    heads = model.roi_heads
    assert heads.group_size == 7
    if not intent["psroi"]:
        assert heads.cls_pool is None and heads.bbox_pool is None
        return
    for pool in (heads.cls_pool, heads.bbox_pool):
        assert isinstance(pool, DeformPSRoIPool)
        assert pool.modulated == (intent["psroi"] == "modulated")


@pytest.mark.parametrize("built", _configs(family="rfcn"), ids=_id, indirect=True)
def test_rfcn_dilates_res5_to_stride_16(built):
    backbone = built[3].backbone
    assert backbone.output_shape()["res5"].stride == 16
    assert [block.conv1.stride for block in backbone.res5] == [(1, 1)] * 3  # no stride in res5 (stride_in_1x1)
    assert backbone.res5[0].conv2.dilation == (2, 2)


@pytest.mark.parametrize("built", _configs(stages=set(), pool="", psroi=""), ids=_id, indirect=True)
def test_plain_configs_have_no_deformable_layer(built):
    model = built[3]
    deformable = (DeformBottleneck, DeformConv, DeformROIPooler, DeformRoIPool, DeformPSRoIPool)
    assert not [name for name, m in model.named_modules() if isinstance(m, deformable)]


def test_number_of_classes_matches_the_dataset(built):
    _, intent, _, model = built
    if intent["family"] == "retinanet":
        assert model.num_classes == intent["num_classes"]
    elif intent["family"] == "deeplab":
        assert model.sem_seg_head.predictor.out_channels == intent["num_classes"]
    else:
        assert model.roi_heads.num_classes == intent["num_classes"]


@pytest.mark.parametrize("built", _configs(weights=True), ids=_id, indirect=True)
def test_configs_start_from_the_imagenet_weights_of_their_depth(built):
    path, intent, _, _ = built
    weights = build_cfg(str(path)).MODEL.WEIGHTS
    if intent["family"] == "deeplab":  # ImageNet R-101 with the DeepLab stem
        assert weights == "detectron2://DeepLab/R-103.pkl"
    else:
        assert weights == f"detectron2://ImageNetPretrained/MSRA/R-{intent['depth']}.pkl"


# --- the demo's R-FCN settings for training from scratch with SGD (MODEL.RFCN.HIDDEN_INIT, head LR factor) ---


def _demo_rfcn_head(*opts):
    import torch
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.roi_heads import build_roi_heads

    cfg = build_cfg(str(CONFIG_ROOT / "Demo" / "rfcn_plain.yaml"), ["MODEL.RFCN.HIDDEN_DIM", "16", *opts])
    torch.manual_seed(0)
    return build_roi_heads(cfg, {"res5": ShapeSpec(channels=32, stride=16)})


def test_demo_rfcn_configs_use_the_from_scratch_head_settings():
    head_rule = [r"(^|\.)roi_heads\.(conv_new|rfcn_cls|rfcn_bbox)\.", 50.0, 0.02]
    for name in ("rfcn_plain.yaml", "rfcn_dcnv2.yaml"):
        cfg = build_cfg(str(CONFIG_ROOT / "Demo" / name))
        assert (cfg.MODEL.RFCN.HIDDEN_INIT, cfg.MODEL.RFCN.HEAD_INIT_STD) == ("msra", 0.01)
        assert (cfg.MODEL.RFCN.HEAD_LR_FACTOR, list(cfg.SOLVER.PARAM_LR_FACTORS)) == (1.0, [head_rule])
    cfg = build_cfg(str(CONFIG_ROOT / "COCO-Detection" / "rfcn_R_101_1x.yaml"))
    assert (cfg.MODEL.RFCN.HIDDEN_INIT, cfg.MODEL.RFCN.HEAD_INIT_STD) == ("normal", 0.01)  # the original head
    assert (cfg.MODEL.RFCN.HEAD_LR_FACTOR, list(cfg.SOLVER.PARAM_LR_FACTORS)) == (1.0, [])


def test_rfcn_head_weights_are_not_rescaled_by_a_learning_rate_setting():
    """Checkpoints do not depend on the learning-rate factor: the head's init is HEAD_INIT_STD."""
    heads = _demo_rfcn_head("MODEL.RFCN.HIDDEN_INIT", "normal")
    for conv in (heads.conv_new, heads.rfcn_cls, heads.rfcn_bbox):
        assert abs(conv.weight.std().item() - 0.01) < 0.002


def test_rfcn_hidden_init_is_validated():
    with pytest.raises(ValueError, match="HIDDEN_INIT"):
        _demo_rfcn_head("MODEL.RFCN.HIDDEN_INIT", "xavier")
