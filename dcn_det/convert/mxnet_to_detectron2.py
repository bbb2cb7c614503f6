"""Maps the tensors of the authors' MXNet models (msracver/Deformable-ConvNets ``.params``
files, read by :func:`load_mxnet_params`) onto a dcn_det / detectron2 model built from one of
``configs/Original/*.yaml``.

The original's names and what they become (``S`` stage 2-5, ``B`` the block: ``a`` = 0,
``b``, ``c``, ... = 1, 2, ... in the ResNet-50 naming, ``b1`` ... ``b22`` = 1 ... 22 in the
ResNet-101 one):

  conv1, bn_conv1                      backbone.stem.conv1 (+ .norm, frozen batch norm)
  resSB_branch1 / bnSB_branch1         backbone.resS.B.shortcut (+ .norm)
  resSB_branch2{a,b,c} / bnSB_...      backbone.resS.B.conv{1,2,3} (+ .norm)
  resSB_branch2b_offset                backbone.resS.B.conv2_offset
  rpn_conv_3x3                         proposal_generator.rpn_head.conv
  rpn_cls_score [2A: bg block, fg block] proposal_generator.rpn_head.objectness_logits,
                                       one logit per anchor: fg - bg (the softmax of the pair
                                       is the sigmoid of the difference)
  rpn_bbox_pred                        proposal_generator.rpn_head.anchor_deltas
  conv_new_1                           roi_heads.conv_new (R-FCN) or roi_heads.box_reduce
                                       (Faster R-CNN's 1x1 conv before RoI pooling)
  rfcn_cls [(1+C) k^2]                 roi_heads.rfcn_cls, background block moved last
  rfcn_bbox(_test) [8 k^2]             roi_heads.rfcn_bbox: the foreground half of the
                                       class-agnostic (bg, fg) box maps
  rfcn_cls_offset_t, rfcn_bbox_offset_t  roi_heads.cls_pool / bbox_pool .conv_offset
                                       (class blocks of 2 k^2, background moved last)
  offset                               the deformable RoI pooler's offset fc
                                       (roi_heads.box_pooler[.pooler].pool.offset_fc.0)
  fc_new_1, fc_new_2                   roi_heads.box_head.fc1, fc2
  cls_score [1+C]                      roi_heads.box_predictor.cls_score, background last
  bbox_pred(_test) [4 (1+C)]           roi_heads.box_predictor.bbox_pred without the
                                       background's 4 rows

``*_test`` tensors (the box layer with the training's target normalisation folded in, which
the authors' checkpoints carry and their test code loads instead) supersede the plain ones.
Batch norm: gamma, beta, moving_mean, moving_var -> weight, bias, running_mean, running_var
(the original's eps 1e-5 is FrozenBatchNorm2d's).
"""
import re
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

BN_FIELDS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_var": "running_var"}
BRANCHES = {"branch1": "shortcut", "branch2a": "conv1", "branch2b": "conv2", "branch2c": "conv3"}

Transform = Callable[[np.ndarray], np.ndarray]


class ConversionError(ValueError):
    """The file and the model do not fit; the message is one line."""


def block_index(letters: str) -> int:
    """'a' -> 0, 'b' -> 1, ..., and 'b1' ... 'b22' (ResNet-101's Caffe names) -> 1 ... 22."""
    if re.fullmatch(r"[a-z]", letters):
        return ord(letters) - ord("a")
    match = re.fullmatch(r"b(\d+)", letters)
    if match:
        return int(match.group(1))
    raise ConversionError(f"cannot read the block name {letters!r} (expected a letter, or b1, b2, ...)")


def _strip(name: str) -> str:
    return name.split(":", 1)[1] if name.startswith(("arg:", "aux:")) else name


def _same(array):
    return array


def _fg_minus_bg(array):
    """[2A, ...] (bg block, fg block) -> [A, ...] fg - bg."""
    half = array.shape[0] // 2
    return array[half:] - array[:half]


def _bg_last(block: int) -> Transform:
    """Class blocks of ``block`` channels with background first -> background last."""
    def move(array):
        return np.concatenate([array[block:], array[:block]])
    return move


def _foreground_boxes(block: int) -> Transform:
    """Class-agnostic box maps [(bg 4, fg 4) x block] -> the fg half [4 x block]."""
    def take(array):
        return array[4 * block: 8 * block]
    return take


def _drop_background_boxes(array):
    """Class-specific box deltas [4 (1+C)] with background first -> [4 C]."""
    return array[4:]


def _box_pooler_offset_fc(model_shapes) -> str:
    """Where the model keeps its deformable RoI pooler's (first) offset fc."""
    for key in model_shapes:
        if key.startswith("roi_heads.box_pooler.") and key.endswith("pool.offset_fc.0.weight"):
            return key[: -len(".weight")]
    raise ConversionError("the file has a deformable RoI pooling offset fc (offset_*) but the model's box pooler has "
                          "none (MODEL.DCN.POOL \"dpool\" with MODEL.DCN.POOL_OFFSET_FC_DIMS [])")


def _target(name: str, model_shapes: Dict[str, Tuple[int, ...]]) -> Optional[Tuple[str, Transform]]:
    """The model tensor the original tensor ``name`` fills, and how; None if unknown."""
    match = re.fullmatch(r"(conv1|bn_conv1)_(weight|gamma|beta|moving_mean|moving_var)", name)
    if match:
        field = "weight" if match.group(2) == "weight" else f"norm.{BN_FIELDS[match.group(2)]}"
        return f"backbone.stem.conv1.{field}", _same
    match = re.fullmatch(r"res(\d)([a-z]\d*)_(branch1|branch2[abc])(_offset)?_(weight|bias)", name)
    if match:
        stage, block, branch, offset, field = match.groups()
        module = "conv2_offset" if offset else BRANCHES[branch]
        if offset and branch != "branch2b":
            return None
        return f"backbone.res{stage}.{block_index(block)}.{module}.{field}", _same
    match = re.fullmatch(r"bn(\d)([a-z]\d*)_(branch1|branch2[abc])_(gamma|beta|moving_mean|moving_var)", name)
    if match:
        stage, block, branch, field = match.groups()
        return f"backbone.res{stage}.{block_index(block)}.{BRANCHES[branch]}.norm.{BN_FIELDS[field]}", _same

    match = re.fullmatch(r"(rpn_conv_3x3|rpn_cls_score|rpn_bbox_pred)_(weight|bias)", name)
    if match:
        module = {"rpn_conv_3x3": "conv", "rpn_cls_score": "objectness_logits", "rpn_bbox_pred": "anchor_deltas"}
        transform = _fg_minus_bg if match.group(1) == "rpn_cls_score" else _same
        return f"proposal_generator.rpn_head.{module[match.group(1)]}.{match.group(2)}", transform

    match = re.fullmatch(r"(conv_new_1|rfcn_cls|rfcn_bbox|rfcn_cls_offset_t|rfcn_bbox_offset_t)_(weight|bias)(_test)?",
                         name)
    if match:
        layer, field = match.group(1), match.group(2)
        if layer == "conv_new_1" and "roi_heads.box_reduce.weight" in model_shapes:
            return f"roi_heads.box_reduce.{field}", _same
        module = {"conv_new_1": "conv_new", "rfcn_cls": "rfcn_cls", "rfcn_bbox": "rfcn_bbox",
                  "rfcn_cls_offset_t": "cls_pool.conv_offset", "rfcn_bbox_offset_t": "bbox_pool.conv_offset"}[layer]
        target = f"roi_heads.{module}.{field}"
        k2 = _rfcn_bins(model_shapes)
        if layer == "rfcn_cls":
            return target, _bg_last(k2)
        if layer == "rfcn_cls_offset_t":
            return target, _bg_last(2 * k2)
        if layer == "rfcn_bbox":
            return target, _foreground_boxes(k2)
        return target, _same

    match = re.fullmatch(r"offset_(weight|bias)", name)
    if match:
        return f"{_box_pooler_offset_fc(model_shapes)}.{match.group(1)}", _same
    match = re.fullmatch(r"(fc_new_1|fc_new_2|cls_score|bbox_pred)_(weight|bias)(_test)?", name)
    if match:
        layer, field = match.group(1), match.group(2)
        if layer.startswith("fc_new"):
            return f"roi_heads.box_head.fc{layer[-1]}.{field}", _same
        transform = _bg_last(1) if layer == "cls_score" else _drop_background_boxes
        return f"roi_heads.box_predictor.{layer}.{field}", transform
    return None


def _rfcn_bins(model_shapes) -> int:
    """k^2 of the model's R-FCN head (its box maps have 4 k^2 channels)."""
    shape = model_shapes.get("roi_heads.rfcn_bbox.weight")
    if shape is None:
        raise ConversionError("the file has R-FCN head tensors (rfcn_*) but the model has no R-FCN head "
                              "(MODEL.ROI_HEADS.NAME RFCNROIHeads)")
    return shape[0] // 4


def convert_mxnet_params(params: Dict[str, np.ndarray], model_shapes: Dict[str, Tuple[int, ...]]
                         ) -> Dict[str, torch.Tensor]:
    """The model's state dict from the original's tensors.

    Args:
        params: name -> array as :func:`load_mxnet_params` returns (``arg:`` / ``aux:``
            prefixes optional).
        model_shapes: every tensor of the target model's state dict and its shape.

    Raises :class:`ConversionError` (one line) when a tensor of the file is unused, a model
    tensor is left unfilled, or shapes disagree.
    """
    names = {_strip(n): n for n in params}
    superseded = {n[: -len("_test")] for n in names if n.endswith("_test")}
    converted: Dict[str, torch.Tensor] = {}
    unused: List[str] = []
    for name, full in sorted(names.items()):
        if name in superseded:
            continue  # the file's *_test version is the one the original tests with
        target = _target(name, model_shapes)
        if target is None or target[0] not in model_shapes:
            unused.append(name if target is None else f"{name} (-> {target[0]}, not in the model)")
            continue
        key, transform = target
        if key in converted:
            raise ConversionError(f"two tensors of the file fill {key}: check the file's names")
        array = np.asarray(transform(np.asarray(params[full])))
        if tuple(array.shape) != tuple(model_shapes[key]):
            raise ConversionError(f"{name}: shape {tuple(params[full].shape)} becomes {tuple(array.shape)}, but the "
                                  f"model's {key} is {tuple(model_shapes[key])} (does the config match the network?)")
        converted[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if unused:
        raise ConversionError(f"{len(unused)} tensor(s) of the file are not used by the model: {', '.join(unused[:8])}"
                              + (" ..." if len(unused) > 8 else ""))
    unfilled = [k for k in model_shapes if k not in converted]
    if unfilled:
        raise ConversionError(f"{len(unfilled)} model tensor(s) get no value from the file: {', '.join(unfilled[:8])}"
                              + (" ..." if len(unfilled) > 8 else ""))
    return converted
