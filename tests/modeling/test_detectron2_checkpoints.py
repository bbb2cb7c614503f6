"""detectron2's own Mask R-CNN with deformable convs (configs/Misc/mask_rcnn_R_50_FPN_1x_dconv_c3-c5.yaml),
built by detectron2 itself, saved, and loaded into dcn_det's model: every key matches (no missing,
no unexpected) and both compute the same detections and masks.

detectron2's DeformConv needs its compiled ``_C``; the repackaged wheel has none (a stand-in class
raises on construction) and upstream's CPU build runs only v1. So detectron2's model computes its
deformable convs with torchvision's ``deform_conv2d`` here: an implementation independent of
dcn_det's. With a real detectron2 DeformConv the real class is built (its parameter names are the
ones checked) and only its forward is replaced; otherwise a stand-in with the constructor and
parameters of detectron2's (weight, bias, norm) is built in its place."""
import pytest
import torch
import torchvision
from detectron2 import model_zoo
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.modeling.backbone import resnet as detectron2_resnet
from torch import nn
from torch.nn.modules.utils import _pair

from dcn_det.engine import build_cfg

from .test_configs import CONFIG_ROOT

pytestmark = pytest.mark.slow

MISC_CONFIG = "Misc/mask_rcnn_R_50_FPN_1x_dconv_c3-c5.yaml"
TEST_OPTS = ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.RPN.POST_NMS_TOPK_TEST", "200"]


def _torchvision_forward(self, x, offset, mask=None):
    out = torchvision.ops.deform_conv2d(
        x, offset, self.weight, self.bias, _pair(self.stride), _pair(self.padding), _pair(self.dilation), mask
    )
    out = self.norm(out) if self.norm is not None else out
    return self.activation(out) if self.activation is not None else out


class _StandInDeformConv(nn.Module):
    """detectron2's DeformConv / ModulatedDeformConv constructor and parameters."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=False, norm=None, activation=None):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *_pair(kernel_size)))
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.norm, self.activation = norm, activation

    forward = _torchvision_forward


def _detectron2_cfg(tmp_path):
    try:
        path = model_zoo.get_config_file(MISC_CONFIG)
    except RuntimeError:  # an install without detectron2's config files: the same config, written out
        path = tmp_path / "mask_rcnn_R_50_FPN_1x_dconv_c3-c5.yaml"
        path.write_text(
            f'_BASE_: "{model_zoo.get_config_file("Base-RCNN-FPN.yaml")}"\n'
            "MODEL:\n  MASK_ON: True\n  RESNETS:\n    DEPTH: 50\n"
            "    DEFORM_ON_PER_STAGE: [False, True, True, True]\n    DEFORM_MODULATED: False\n"
        )
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    cfg.merge_from_list(TEST_OPTS)
    return cfg, str(path)


def _build_detectron2_model(cfg, monkeypatch):
    try:
        from detectron2 import _C  # noqa: F401

        for name in ("DeformConv", "ModulatedDeformConv"):
            monkeypatch.setattr(getattr(detectron2_resnet, name), "forward", _torchvision_forward)
    except ImportError:
        monkeypatch.setattr(detectron2_resnet, "DeformConv", _StandInDeformConv)
        monkeypatch.setattr(detectron2_resnet, "ModulatedDeformConv", _StandInDeformConv)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert type(model.backbone.bottom_up.res3[0]) is detectron2_resnet.DeformBottleneckBlock  # detectron2's own
    # Weights a trained model could have: offsets of a pixel or two, non-trivial frozen BN.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if "conv2_offset" in name:
                tensor.copy_(torch.randn(tensor.shape, generator=g) * (1e-4 if name.endswith("weight") else 1.0))
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
            elif name.endswith(("norm.bias", "running_mean")):
                tensor.copy_(torch.randn(tensor.shape, generator=g) * 0.1)
    return model.eval()


# Fixed boxes for the heads: the comparison skips NMS, whose cut-offs would turn rounding
# differences into different detections.
BOXES = torch.tensor([[8.0, 10.0, 90.0, 100.0], [40.0, 30.0, 150.0, 120.0], [60.0, 5.0, 100.0, 60.0], [0.0, 0.0, 160.0, 128.0]])


def _outputs(model, image):
    """FPN features, box-head class logits and deltas, and mask logits for BOXES."""
    from detectron2.structures import Boxes

    with torch.no_grad():
        features = model.backbone(model.preprocess_image([{"image": image}]).tensor)
        heads, boxes = model.roi_heads, [Boxes(BOXES)]
        box_features = heads.box_pooler([features[f] for f in heads.box_in_features], boxes)
        class_logits, box_deltas = heads.box_predictor(heads.box_head(box_features))
        mask_logits = heads.mask_head.layers(heads.mask_pooler([features[f] for f in heads.mask_in_features], boxes))
    return {**features, "class_logits": class_logits, "box_deltas": box_deltas, "mask_logits": mask_logits}


def _assert_close(got, expected):
    for key, value in expected.items():
        # float32 through 50 layers, two deformable-conv implementations: equal up to rounding.
        torch.testing.assert_close(got[key], value, rtol=1e-3, atol=1e-3 * value.abs().max().item(), msg=key)


@pytest.fixture(scope="module")
def detectron2_checkpoint(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    tmp_path = tmp_path_factory.mktemp("detectron2_dconv")
    try:
        cfg, config_file = _detectron2_cfg(tmp_path)
        model = _build_detectron2_model(cfg, monkeypatch)
        path = tmp_path / "model_final.pth"
        torch.save({"model": model.state_dict()}, path)
        image = torch.rand(3, 128, 160, generator=torch.Generator().manual_seed(2)) * 255
        yield config_file, path, model.state_dict(), image, _outputs(model, image)
    finally:
        monkeypatch.undo()


OUR_CONFIGS = {
    "our_config": str(CONFIG_ROOT / "COCO-InstanceSegmentation" / "mask_rcnn_R_50_FPN_dconv_c3-c5_1x.yaml"),
    "detectron2_config": None,  # detectron2's own file through dcn_det.engine.build_cfg
}


@pytest.mark.parametrize("config", list(OUR_CONFIGS))
def test_detectron2_dconv_mask_rcnn_checkpoint_loads_key_for_key_and_computes_the_same(detectron2_checkpoint, config):
    config_file, path, state, image, expected = detectron2_checkpoint
    ours = build_model(build_cfg(OUR_CONFIGS[config] or config_file, TEST_OPTS)).eval()
    assert type(ours.backbone.bottom_up.res3[0]).__module__.startswith("dcn_det")

    checkpoint = torch.load(path, weights_only=True)["model"]
    incompatible = ours.load_state_dict(checkpoint, strict=False)
    assert (incompatible.missing_keys, incompatible.unexpected_keys) == ([], [])
    DetectionCheckpointer(ours).load(str(path))  # the path users take (MODEL.WEIGHTS)
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    _assert_close(_outputs(ours, image), expected)
    with torch.no_grad():
        (output,) = ours([{"image": image, "height": 128, "width": 160}])
    assert output["instances"].has("pred_masks")  # and the whole model runs


def test_the_comparison_sees_the_offsets(detectron2_checkpoint):
    """With the offsets zeroed the outputs differ: the test above compares deformable sampling."""
    config_file, _, state, image, expected = detectron2_checkpoint
    ours = build_model(build_cfg(config_file, TEST_OPTS)).eval()
    ours.load_state_dict({k: (v * 0 if "conv2_offset" in k else v) for k, v in state.items()})
    with pytest.raises(AssertionError):
        _assert_close(_outputs(ours, image), {"p5": expected["p5"]})
