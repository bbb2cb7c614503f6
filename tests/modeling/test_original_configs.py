"""configs/Original/*.yaml at full size: each builds, passes the config checker and is the
network its comment names (the per-stage match with MXNet, at reduced width:
tests/verify_mxnet/test_original_detectors_vs_mxnet.py)."""
from pathlib import Path

import pytest
from detectron2.modeling import build_model

from dcn_det.config import check_cfg
from dcn_det.engine import build_cfg
from dcn_det.layers import DeformConv

ROOT = Path(__file__).resolve().parents[2] / "configs" / "Original"
# config: (classes, deformable res5 offset groups or 0, anchors per cell, head)
EXPECTED = {
    "rfcn_dcn_coco": (80, 4, 12, "RFCNROIHeads"),
    "rfcn_coco": (80, 0, 12, "RFCNROIHeads"),
    "rcnn_dcn_coco": (80, 4, 12, "DeformStandardROIHeads"),
    "rcnn_coco": (80, 0, 12, "DeformStandardROIHeads"),
    "deform_conv_voc_demo": (20, 1, 9, "RFCNROIHeads"),
    "deform_psroi_voc_demo": (20, 0, 9, "RFCNROIHeads"),
}


def test_every_original_config_is_listed():
    shipped = {p.stem for p in ROOT.glob("*.yaml") if not p.stem.startswith("Base-")}
    assert shipped == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builds_at_full_size(name):
    classes, groups, anchors, heads = EXPECTED[name]
    cfg = check_cfg(build_cfg(str(ROOT / f"{name}.yaml"), ["MODEL.DEVICE", "cpu"]))
    model = build_model(cfg)
    assert type(model.roi_heads).__name__ == heads
    assert model.roi_heads.num_classes == classes
    assert model.proposal_generator.anchor_generator.num_anchors == [anchors]
    assert len(model.backbone.res4) == 23  # ResNet-101
    deform = [m for m in model.modules() if isinstance(m, DeformConv)]
    assert len(deform) == (3 if groups else 0)
    assert all(m.deformable_groups == groups and m.border == "dcnv1" for m in deform)
