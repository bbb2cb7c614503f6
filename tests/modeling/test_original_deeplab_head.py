"""OriginalDeepLabHead (MODEL.SEM_SEG_HEAD.NAME "OriginalDeepLabHead"): the authors' fc6 -> score
-> fixed bilinear deconvolution. Its upsampling is checked against bilinear interpolation
(F.interpolate, half-pixel centres), equal inside and different only in the outer 8-pixel band;
its loss against F.cross_entropy; and it runs in detectron2's SemanticSegmentor from a config."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import ShapeSpec

from dcn_det.modeling import OriginalDeepLabHead


def _head(**kwargs):
    torch.manual_seed(0)
    return OriginalDeepLabHead({"res5": ShapeSpec(channels=32, stride=16)}, num_classes=5, hidden_dim=16, **kwargs)


@pytest.mark.parametrize("size", [(4, 6), (7, 3)])
def test_upsampling_is_bilinear_inside_and_differs_only_in_the_outer_band(size):
    head = _head().eval()
    for conv in (head.fc6, head.score):  # larger weights: scores that vary across the map
        torch.nn.init.normal_(conv.weight, std=0.5)
    features = {"res5": torch.randn(2, 32, *size, dtype=torch.float32)}
    with torch.no_grad():
        up, losses = head(features)
        scores = head.score(head.fc6(features["res5"]))
    assert losses == {} and up.shape == (2, 5, size[0] * 16, size[1] * 16)
    reference = F.interpolate(scores, scale_factor=16, mode="bilinear", align_corners=False)
    difference = (up - reference).abs()
    torch.testing.assert_close(up[..., 8:-8, 8:-8], reference[..., 8:-8, 8:-8], rtol=1e-5, atol=1e-5)
    assert difference[..., :8, :].max() > 1e-3  # the band where the deconvolution's taps fall off the map


def test_training_loss_is_cross_entropy_over_labelled_pixels():
    head = _head().train()
    features = {"res5": torch.randn(2, 32, 4, 5)}
    targets = torch.randint(0, 5, (2, 60, 70))
    targets[:, :10] = 255  # ignored
    _, losses = head(features, targets)
    with torch.no_grad():
        scores = head.layers(features)[..., :60, :70]
    torch.testing.assert_close(losses["loss_sem_seg"], F.cross_entropy(scores, targets, ignore_index=255))
    losses["loss_sem_seg"].backward()
    assert head.fc6.weight.grad is not None and "upsampling_kernel" not in dict(head.named_parameters())
    assert "upsampling_kernel" not in head.state_dict()


def test_head_runs_in_semantic_segmentor_from_a_config():
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from dcn_det import add_dcn_config

    cfg = add_dcn_config(get_cfg())
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.META_ARCHITECTURE = "SemanticSegmentor"
    cfg.MODEL.BACKBONE.NAME = "build_dcn_resnet_backbone"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res5"]
    cfg.MODEL.RESNETS.RES5_DILATION = 2
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, cfg.MODEL.RESNETS.WIDTH_PER_GROUP, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 16, 8, 32
    cfg.MODEL.SEM_SEG_HEAD.NAME = "OriginalDeepLabHead"
    cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["res5"]
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 4
    cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM = 24
    cfg.MODEL.SEM_SEG_HEAD.COMMON_STRIDE = 16
    model = build_model(cfg).eval()
    assert isinstance(model.sem_seg_head, OriginalDeepLabHead)
    image = torch.randint(0, 256, (3, 100, 75)).float()  # not a multiple of 16: cropped to the image
    with torch.no_grad():
        out = model([{"image": image, "height": 50, "width": 40}])[0]["sem_seg"]
    assert out.shape == (4, 50, 40)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="in_feature 'res4' is not a backbone output"):
        _head(in_feature="res4")
    with pytest.raises(ValueError, match="common_stride must be even"):
        _head(common_stride=15)
