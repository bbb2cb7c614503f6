"""A DCN backbone under torch.autocast on the CPU (bfloat16): every deformable layer runs
(no dtype error between bfloat16 activations and float32 weights), the features stay
close to float32's, and gradients reach the float32 offset branches."""
import torch

from dcn_det.modeling.backbone import build_dcn_resnet_fpn_backbone
from tests.modeling.test_dcn_resnet import INPUT, _cfg


def _backbone():
    torch.manual_seed(0)
    backbone = build_dcn_resnet_fpn_backbone(_cfg(deform_on=(False, True, True, True), modulated=True), INPUT)
    offset_convs = [m for name, m in backbone.named_modules() if name.endswith("conv2_offset")]
    assert len(offset_convs) == 13  # res3-res5 of a ResNet-50: 4 + 6 + 3 blocks
    with torch.no_grad():
        for conv in offset_convs:  # non-zero offsets and masks: sampling between pixels
            conv.weight.normal_(std=0.02)
    return backbone, offset_convs


def test_dcn_backbone_under_bfloat16_autocast_matches_float32():
    backbone, offset_convs = _backbone()
    image = torch.randn(1, 3, 64, 96)
    expected = backbone(image)
    expected_grads = torch.autograd.grad(sum(f.square().mean() for f in expected.values()), [c.weight for c in offset_convs])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = backbone(image)
    grads = torch.autograd.grad(sum(f.float().square().mean() for f in features.values()), [c.weight for c in offset_convs])
    for name, feature in features.items():
        assert feature.dtype == torch.bfloat16, name
        error = (feature.float() - expected[name]).norm() / expected[name].norm()
        assert error < 0.03, (name, error.item())
    for grad, expected_grad in zip(grads, expected_grads):
        assert grad.dtype == torch.float32
        cosine = torch.nn.functional.cosine_similarity(grad.flatten(), expected_grad.flatten(), dim=0)
        assert cosine > 0.9, cosine.item()
