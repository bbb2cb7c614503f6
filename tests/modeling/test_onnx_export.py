"""dcn_det.modeling.onnx_export: whole detectors (TorchScript exporter) and DCN backbones (dynamo
exporter) of small versions of the configs, run in onnxruntime against the same model in
PyTorch on images the export never saw."""
import os

import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import dcn_det.onnx as dcn_onnx  # noqa: E402
from dcn_det.modeling.onnx_export import DETECTOR_OUTPUTS, BackboneForExport, detector_for_export  # noqa: E402

from .deformed_model import EXPORT_TEST_OPTS, deformed_random_model  # noqa: E402
from .synthetic import tiny_cfg  # noqa: E402

pytestmark = pytest.mark.slow

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
SIZE = (128, 160)


def _images(count):
    gen = torch.Generator().manual_seed(100)
    return [torch.rand(3, *SIZE, generator=gen) * 255 for _ in range(count)]


def _session(path):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def assert_same_detections(ref, got, box_tol=0.05, score_tol=1e-3):
    """Same number of detections, and each one on either side has a counterpart of the same
    class within the tolerances on the other. Detections whose scores tie may be listed in
    another order, and at the cut to TEST.DETECTIONS_PER_IMAGE a tie may keep a different
    one: a detection without counterpart must score within score_tol of the lowest kept."""
    ref_boxes, ref_classes, ref_scores = ref
    boxes, classes, scores = (torch.from_numpy(a) for a in got)
    assert len(boxes) == len(ref_boxes) > 0
    for (b1, c1, s1), (b2, c2, s2) in (((ref_boxes, ref_classes, ref_scores), (boxes, classes, scores)),
                                       ((boxes, classes, scores), (ref_boxes, ref_classes, ref_scores))):
        close = ((b1[:, None] - b2[None]).abs().amax(dim=2) <= box_tol) & (c1[:, None] == c2[None]) \
            & ((s1[:, None] - s2[None]).abs() <= score_tol)
        alone = ~close.any(dim=1)
        assert (s1[alone] <= s2.min() + score_tol).all(), f"{int(alone.sum())} detections without a counterpart"
        assert alone.sum() <= 2, f"{int(alone.sum())} detections without a counterpart"


# FPN + DCNv2 + mdpool is tests/tools/test_export_onnx.py's model. The R-101 R-FCN runs at depth
# 50 (same head, dconv in res5, class-specific offsets), to keep these tests short.
@pytest.mark.parametrize("config,opts", [
    ("COCO-Detection/faster_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x.yaml", []),
    ("COCO-Detection/rfcn_R_101_dconv_c5_dpsroi_1x.yaml", ["MODEL.RESNETS.DEPTH", "50"]),
    ("Demo/rfcn_dcnv2.yaml", []),  # modulated deformable convs and PS-RoI pooling
], ids=["faster_rcnn_fpn_dconv_dpool", "rfcn_dconv_dpsroi", "rfcn_mdconv_mdpsroi"])
def test_whole_detector_runs_in_onnxruntime(tmp_path, config, opts):
    # No cap on the proposals after NMS: their number then changes from image to image, and the
    # graph must not keep the example's count (as len() and `x[index] = ...` would make it).
    cfg = tiny_cfg(os.path.join(CONFIGS, config), ["MODEL.RPN.POST_NMS_TOPK_TEST", "5000"] + EXPORT_TEST_OPTS + opts)
    model = deformed_random_model(cfg, SIZE)
    example, *images = _images(3)
    adapter = detector_for_export(model, example)
    path = dcn_onnx.export(adapter, (example,), str(tmp_path / "detector.onnx"), dynamo=False,
                           input_names=["image"], output_names=list(DETECTOR_OUTPUTS))
    session = _session(path)
    assert [o.name for o in session.get_outputs()] == list(DETECTOR_OUTPUTS)
    for image in images:
        with torch.no_grad():
            ref = adapter(image)
        got = session.run(None, {"image": image.numpy()})
        assert_same_detections(ref[:3], got[:3])
        assert got[3].tolist() == list(SIZE)


@pytest.mark.parametrize("config", [
    "COCO-Detection/faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml",  # ResNet-FPN, DCNv2
    "Demo/rfcn_dcnv2.yaml",  # ResNet (res4, dilated res5), DCNv2
], ids=["resnet_fpn_mdconv", "resnet_dilated_c5_mdconv"])
def test_backbone_exports_with_the_dynamo_exporter(tmp_path, config):
    model = deformed_random_model(tiny_cfg(os.path.join(CONFIGS, config)), SIZE)
    backbone = BackboneForExport(model).eval()
    example, image = _images(2)
    path = dcn_onnx.export(backbone, (example,), str(tmp_path / "backbone.onnx"), input_names=["image"],
                           output_names=list(backbone.names))
    got = _session(path).run(None, {"image": image.numpy()})
    with torch.no_grad():
        ref = backbone(image)
    assert len(got) == len(ref) == len(model.backbone.output_shape())
    for name, a, b in zip(backbone.names, got, ref):
        # 1e-3 of the largest feature: float32 rounding differences between onnxruntime's and
        # PyTorch's convolutions grow through the random layers (1.4e-4 seen on res4 of a tiny
        # R-101, which has no deformable layer; 2e-6 on the R-50-FPN).
        difference = (torch.from_numpy(a) - b).abs().max().item()
        assert difference <= 1e-3 * b.abs().max().item(), (name, difference, b.abs().max().item())


def test_detector_for_export_wants_eval_mode():
    from detectron2.modeling import build_model

    model = build_model(tiny_cfg(os.path.join(CONFIGS, "Demo/faster_rcnn_dcnv1.yaml")))
    with pytest.raises(ValueError, match="eval mode"):
        detector_for_export(model.train(), _images(1)[0])
