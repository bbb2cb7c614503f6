"""Exportable views of the detectron2 models dcn_det builds (used by tools/export_onnx.py and
tools/benchmark_ops.py). Both take what a detectron2 model takes as ``"image"``: a float
``[3, H, W]`` tensor, pixel values 0-255 in ``cfg.INPUT.FORMAT`` order, already resized.

- :func:`detector_for_export`: the whole detector (preprocessing, backbone, RPN, ROI heads,
  box decoding, NMS) through detectron2's ``TracingAdapter``, which flattens its inputs and
  outputs to tensors. It exports with the TorchScript-based exporter (``dynamo=False``):
  ``torch.export`` (the dynamo exporter) stops in detectron2 itself, at the data-dependent
  image padding of ``ImageList.from_tensors`` and, past that, at
  ``find_top_rpn_proposals``'s ``if not valid_mask.all()``.
- :class:`BackboneForExport`: normalisation, padding and the backbone (ResNet / ResNet-FPN
  with deformable convs); no data-dependent step, so both exporters handle it.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from detectron2.export import TracingAdapter
from torch import Tensor, nn

# Names of the flattened outputs of detector_for_export, in TracingAdapter's order (the
# fields of Instances sorted by name, then the image size).
DETECTOR_OUTPUTS = ("boxes", "classes", "scores", "image_size")


def _inference(model, inputs):
    # No rescaling to the original image size: the boxes stay in the coordinates of the input.
    return [{"instances": model.inference(inputs, do_postprocess=False)[0]}]


def detector_for_export(model: nn.Module, image: Tensor) -> TracingAdapter:
    """``adapter(image) -> (boxes [D, 4], classes [D], scores [D], image_size [2])`` for a
    detectron2 ``GeneralizedRCNN`` (in eval mode; the adapter is put in eval mode too, as the
    TorchScript exporter restores the adapter's mode on the whole module tree afterwards)."""
    if model.training:
        raise ValueError("detector_for_export: put the model in eval mode first (model.eval())")
    adapter = TracingAdapter(model, [{"image": image}], _inference).eval()
    with torch.no_grad():
        adapter(image)  # fills adapter.outputs_schema
    keys = _instances_keys(adapter.outputs_schema)
    if keys != ["pred_boxes", "pred_classes", "scores"]:
        raise ValueError(f"detector_for_export: expected boxes, classes and scores, the model returns {keys}")
    return adapter


def _instances_keys(schema) -> List[str]:
    """The field names of the Instances inside TracingAdapter's output schema."""
    while not hasattr(schema, "keys") or "instances" in getattr(schema, "keys", []):
        schema = schema.schemas[0]
    return list(schema.keys)


class BackboneForExport(nn.Module):
    """``forward(image [3, H, W]) -> features``: the model's normalisation, zero padding to the
    backbone's size divisibility (from the static image size, so nothing data-dependent) and
    the backbone; features as a tuple in the order of :attr:`names` (sorted: p2..p6, res4...)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.names: Tuple[str, ...] = tuple(sorted(model.backbone.output_shape()))

    def forward(self, image: Tensor) -> Tuple[Tensor, ...]:
        x = (image - self.model.pixel_mean) / self.model.pixel_std
        divisor = max(self.model.backbone.size_divisibility, 1)
        height, width = int(image.shape[-2]), int(image.shape[-1])
        pad_h, pad_w = -height % divisor, -width % divisor
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        features = self.model.backbone(x[None])
        return tuple(features[name] for name in self.names)
