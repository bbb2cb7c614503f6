"""Another detectron2 project uses dcn_det only through its public API: ``import dcn_det``,
``dcn_det.add_dcn_config(cfg)``, ``dcn_det.layers`` in its own backbone, and dcn_det's ROI
heads by config name. Nothing in detectron2 is patched."""
import subprocess
import sys
import uuid

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, ROI_HEADS_REGISTRY, Backbone, build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from torch import nn

import dcn_det
import dcn_det.layers

BACKBONE_NAME = f"OtherProjectDeformBackbone_{uuid.uuid4().hex[:8]}"


class OtherProjectDeformBackbone(Backbone):
    """The other project's backbone: strided convs, then a modulated deformable conv
    (dcn_det.layers) per output level p3 (stride 8) and p4 (stride 16)."""

    def __init__(self, cfg, input_shape: ShapeSpec):
        super().__init__()
        width = 16
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape.channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.dcn3 = dcn_det.layers.ModulatedDeformConvWithOffset(width, width, kernel_size=3, padding=1)
        self.down = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.dcn4 = dcn_det.layers.ModulatedDeformConvWithOffset(width, width, kernel_size=3, padding=1)
        self.width = width

    def forward(self, x):
        p3 = F.relu(self.dcn3(self.stem(x)))
        p4 = F.relu(self.dcn4(F.relu(self.down(p3))))
        return {"p3": p3, "p4": p4}

    def output_shape(self):
        return {"p3": ShapeSpec(channels=self.width, stride=8), "p4": ShapeSpec(channels=self.width, stride=16)}


@pytest.fixture(scope="module")
def registered_backbone():
    def build(cfg, input_shape):
        return OtherProjectDeformBackbone(cfg, input_shape)

    build.__name__ = BACKBONE_NAME  # a unique name, as @BACKBONE_REGISTRY.register() would use
    BACKBONE_REGISTRY.register(build)
    yield BACKBONE_NAME
    BACKBONE_REGISTRY._obj_map.pop(BACKBONE_NAME)  # registries have no public unregister


@pytest.fixture
def model(registered_backbone):
    cfg = get_cfg()
    dcn_det.add_dcn_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.BACKBONE.NAME = registered_backbone
    cfg.MODEL.RPN.IN_FEATURES = ["p3", "p4"]
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 64
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 32
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64]]
    cfg.MODEL.ROI_HEADS.NAME = "DeformStandardROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p3", "p4"]
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    cfg.MODEL.DCN.POOL = "mdpool"
    cfg.MODEL.DCN.POOL_OFFSET_FC_DIMS = [32]
    torch.manual_seed(0)
    return build_model(cfg)


def _batch():
    g = torch.Generator().manual_seed(0)
    batch = []
    for boxes, classes in (([[10.0, 12.0, 60.0, 70.0], [80.0, 30.0, 150.0, 110.0]], [0, 1]), ([[40.0, 40.0, 100.0, 90.0]], [1])):
        instances = Instances((128, 160))
        instances.gt_boxes = Boxes(torch.tensor(boxes))
        instances.gt_classes = torch.tensor(classes)
        batch.append({"image": torch.randint(0, 256, (3, 128, 160), generator=g).float(), "instances": instances, "height": 128, "width": 160})
    return batch


def test_other_project_model_uses_its_backbone_and_dcn_det_heads(model):
    from dcn_det.layers import ModulatedDeformRoIPool
    from dcn_det.modeling import DeformROIPooler, DeformStandardROIHeads

    assert isinstance(model.backbone, OtherProjectDeformBackbone)
    assert isinstance(model.roi_heads, DeformStandardROIHeads)
    assert isinstance(model.roi_heads.box_pooler, DeformROIPooler)
    assert isinstance(model.roi_heads.box_pooler.pool, ModulatedDeformRoIPool)
    assert model.roi_heads.box_pooler.scales == (1 / 8, 1 / 16)


def test_other_project_model_trains_one_step_on_cpu(model):
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    before = model.backbone.dcn3.conv_offset.weight.detach().clone()
    with EventStorage():
        losses = model(_batch())
    assert {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    optimizer.zero_grad()
    total.backward()
    assert model.backbone.dcn3.conv_offset.weight.grad.abs().sum() > 0
    assert model.roi_heads.box_pooler.pool.mask_fc[-1].weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(model.backbone.dcn3.conv_offset.weight, before)


def test_other_project_model_runs_inference_on_cpu(model):
    model.eval()
    batch = [{k: v for k, v in item.items() if k != "instances"} for item in _batch()]
    with torch.no_grad():
        outputs = model(batch)
    assert len(outputs) == 2
    for output in outputs:
        instances = output["instances"]
        assert instances.image_size == (128, 160)
        assert set(instances.get_fields()) == {"pred_boxes", "scores", "pred_classes"}
        assert len(instances) <= 100


def test_import_dcn_det_patches_nothing_in_detectron2():
    import detectron2.layers
    from detectron2.modeling.backbone import fpn, resnet
    from detectron2.modeling.roi_heads import roi_heads

    assert BACKBONE_REGISTRY.get("build_resnet_backbone") is resnet.build_resnet_backbone
    assert BACKBONE_REGISTRY.get("build_resnet_fpn_backbone") is fpn.build_resnet_fpn_backbone
    assert ROI_HEADS_REGISTRY.get("StandardROIHeads") is roi_heads.StandardROIHeads
    assert ROI_HEADS_REGISTRY.get("Res5ROIHeads") is roi_heads.Res5ROIHeads
    for name in ("DeformConv", "ModulatedDeformConv"):
        assert getattr(detectron2.layers, name).__module__.startswith("detectron2.")
        assert getattr(resnet, name) is getattr(detectron2.layers, name)
    cfg = get_cfg()
    assert "DCN" not in cfg.MODEL and "RFCN" not in cfg.MODEL  # only add_dcn_config adds keys


def test_layers_work_in_plain_pytorch_without_detectron2():
    """A project without detectron2: dcn_det.layers import (torch only) and add_dcn_config
    says what it needs."""
    code = """
import sys
sys.modules["detectron2"] = None  # as if it were not installed
import torch
import dcn_det
from dcn_det.layers import DeformConvWithOffset
y = DeformConvWithOffset(4, 8, 3, padding=1)(torch.randn(1, 4, 6, 6))
assert y.shape == (1, 8, 6, 6)
assert not any(m.startswith("detectron2.") for m in sys.modules), "detectron2 imported"
try:
    dcn_det.add_dcn_config(None)
except ImportError as e:
    assert "detectron2" in str(e)
else:
    raise AssertionError("add_dcn_config without detectron2 should raise ImportError")
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
