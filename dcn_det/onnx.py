"""Export models that use dcn_det's operators to ONNX.

- ``deform_conv2d`` becomes the standard ONNX ``DeformConv`` node (opset 19 and later;
  onnxruntime runs it on the CPU).
- ``deform_psroi_pool`` becomes standard ops: while ``torch.onnx.export`` runs, the op's
  Python entry point computes the same result with plain tensor ops
  (:mod:`dcn_det.ops.deform_psroi_pool_composite`), and those export as usual.

Usage::

    import dcn_det.onnx
    dcn_det.onnx.export(model, (x,), "model.onnx")               # the simplest
    # or with torch.onnx.export's own arguments:
    torch.onnx.export(model, (x,), dynamo=True, opset_version=19,
                      custom_translation_table=dcn_det.onnx.custom_translation_table(19))

Nothing is registered globally by importing this module: the translation table is a plain
dict handed to ``torch.onnx.export``, and the TorchScript exporter's symbolic function
(``dynamo=False``) is registered only for the duration of :func:`export`.
"""
import contextlib
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

import torch

import dcn_det.ops  # noqa: F401  (registers torch.ops.dcn_det)
from dcn_det._files import replace_atomically
from dcn_det.ops.deform_psroi_pool_composite import deform_psroi_pool_composite as _psroi_composite

# DeformConv entered the standard operator set in opset 19 (opset 22 added bfloat16).
MIN_OPSET = 19
DEFAULT_OPSET = 19
# onnxruntime 1.31 loads IR version <= 13 (onnx 1.23 writes 14 by default): never write more.
MAX_IR_VERSION = 13


def _check_opset(opset: int) -> int:
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an int >= {MIN_OPSET} (ONNX DeformConv appeared in opset {MIN_OPSET}), "
                         f"got {opset!r}")
    return opset


def _deform_conv_opset(opset: int):
    """The onnxscript opset module whose DeformConv is the one in force at ``opset``."""
    import onnxscript

    return onnxscript.opset22 if opset >= 22 else onnxscript.opset19


def _refuse_dcnv1_border(border: int) -> None:
    """ONNX's DeformConv samples with the DCNv2 rule; a "dcnv1" layer would export to a
    node that computes something else near the border, so it is refused instead."""
    if int(border) != 0:
        raise NotImplementedError(
            "dcn_det.onnx: a deform_conv2d with border='dcnv1' (MODEL.DCN.BORDER: dcnv1, the original "
            "DCNv1 sampling rule) has no exact ONNX form: ONNX DeformConv interpolates with the 'dcnv2' "
            "rule, which differs near the border of the map. Export a model built with border='dcnv2', "
            "or run this one in PyTorch."
        )


def custom_translation_table(opset: int = DEFAULT_OPSET) -> Dict[Callable, Callable]:
    """``{torch.ops.dcn_det.deform_conv2d.default: translation}`` for ``torch.onnx.export(...,
    dynamo=True, opset_version=opset, custom_translation_table=...)``.

    The translation emits one ``DeformConv`` node. Its conventions equal ours (checked
    numerically in tests/test_onnx.py): offset channels ``2*(g*kh*kw + k)`` = dy and ``+1``
    = dx; mask ``[N, G*kh*kw, Ho, Wo]`` multiplies each sample; bilinear sampling with
    zero outside the map; pads ``[top, left, bottom, right]``, which our symmetric padding
    fills as ``[pad_h, pad_w, pad_h, pad_w]``.
    """
    op = _deform_conv_opset(_check_opset(opset))

    def deform_conv2d(input, offset, weight, bias, mask, stride_h, stride_w, pad_h, pad_w,
                      dil_h, dil_w, groups, offset_groups, border=0):
        _refuse_dcnv1_border(border)
        # Argument order of the schema in dcn_det/ops/csrc/deform_conv2d.cpp; a None bias or
        # mask becomes a missing optional input (ONNX: zero bias, all-ones mask).
        return op.DeformConv(
            input, weight, offset, bias, mask,
            dilations=[dil_h, dil_w], group=groups, offset_group=offset_groups,
            pads=[pad_h, pad_w, pad_h, pad_w], strides=[stride_h, stride_w],
        )

    return {torch.ops.dcn_det.deform_conv2d.default: deform_conv2d}


def _deform_conv2d_symbolic(g, input, offset, weight, bias, mask, stride_h, stride_w, pad_h, pad_w,
                            dil_h, dil_w, groups, offset_groups, border=None):
    """The same DeformConv node for the TorchScript-based exporter (``dynamo=False``)."""
    from torch.onnx import symbolic_helper as sh

    if border is not None and not sh._is_none(border):
        _refuse_dcnv1_border(sh._get_const(border, "i", "border"))

    ints = [sh._get_const(v, "i", name) for v, name in ((stride_h, "stride_h"), (stride_w, "stride_w"),
            (pad_h, "pad_h"), (pad_w, "pad_w"), (dil_h, "dil_h"), (dil_w, "dil_w"), (groups, "groups"),
            (offset_groups, "offset_groups"))]
    stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, offset_groups = ints
    inputs = [input, weight, offset]
    if not sh._is_none(mask):
        if sh._is_none(bias):  # a mask without bias needs an explicit (zero) bias before it
            out_channels = sh._get_tensor_sizes(weight)[0]
            bias = g.op("Constant", value_t=torch.zeros(out_channels))
            bias = g.op("CastLike", bias, input)
        inputs += [bias, mask]
    elif not sh._is_none(bias):
        inputs.append(bias)
    return g.op("DeformConv", *inputs, dilations_i=[dil_h, dil_w], group_i=groups, offset_group_i=offset_groups,
                pads_i=[pad_h, pad_w, pad_h, pad_w], strides_i=[stride_h, stride_w])


@contextlib.contextmanager
def torchscript_symbolics(opset: int = DEFAULT_OPSET) -> Iterator[None]:
    """Registers the TorchScript exporter's symbolic of ``dcn_det::deform_conv2d`` for the
    duration of the ``with`` block (``torch.onnx.export(..., dynamo=False)`` inside it)."""
    _check_opset(opset)
    torch.onnx.register_custom_op_symbolic("dcn_det::deform_conv2d", _deform_conv2d_symbolic, opset)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("dcn_det::deform_conv2d", opset)


def decompose_for_onnx(program: "torch.export.ExportedProgram") -> "torch.export.ExportedProgram":
    """For a program made by ``torch.export`` outside ``torch.onnx.export`` (so the pooling
    op is still the compiled one): replace ``dcn_det::deform_psroi_pool`` by the standard-op
    composite; ``deform_conv2d`` stays for the translation table."""
    return program.run_decompositions({torch.ops.dcn_det.deform_psroi_pool.default: _psroi_composite})


def export(
    model: Any,
    args: Sequence[Any],
    path: str,
    *,
    opset: int = DEFAULT_OPSET,
    dynamo: bool = True,
    input_names: Optional[Sequence[str]] = None,
    output_names: Optional[Sequence[str]] = None,
    dynamic_shapes: Any = None,
    dynamic_axes: Optional[Dict[str, Any]] = None,
    verbose: bool = False,
) -> str:
    """Export ``model(*args)`` to the ONNX file ``path`` (written atomically); returns ``path``.

    Args:
        model: an ``nn.Module`` (or, with ``dynamo=True``, a ``torch.export.ExportedProgram``).
        args: example inputs (tuple).
        opset: ONNX opset, >= 19 (DeformConv).
        dynamo: True: PyTorch's current exporter (torch.export + this module's translation
            table); False: the TorchScript-tracing exporter, with a symbolic registered for
            the call only.
        input_names, output_names: as ``torch.onnx.export``.
        dynamic_shapes: dynamic dimensions for ``dynamo=True`` (torch.export's form).
        dynamic_axes: dynamic dimensions for ``dynamo=False`` (``{input name: {dim: name}}``).
        verbose: print the exporter's progress.

    The file holds standard ONNX operators only; its IR version is at most MAX_IR_VERSION.
    """
    _check_opset(opset)
    args = tuple(args)
    names = dict(input_names=list(input_names) if input_names else None,
                 output_names=list(output_names) if output_names else None)
    if dynamo:
        if dynamic_axes is not None:
            raise ValueError("dynamic_axes is for dynamo=False; with dynamo=True give dynamic_shapes")
        if isinstance(model, torch.export.ExportedProgram):
            model = decompose_for_onnx(model)
        program = torch.onnx.export(
            model, args, dynamo=True, opset_version=opset, custom_translation_table=custom_translation_table(opset),
            dynamic_shapes=dynamic_shapes, verbose=verbose, **names,
        )
        proto = program.model_proto
        # torch 2.14's exporter writes IR 10 (no-op here); a newer one must not make files that
        # onnxruntime 1.31 refuses ("Unsupported model IR version").
        proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)

        def write(tmp: str) -> None:
            import onnx

            onnx.save_model(proto, tmp)
    else:
        if dynamic_shapes is not None:
            raise ValueError("dynamic_shapes needs dynamo=True (the TorchScript exporter takes dynamic_axes)")

        def write(tmp: str) -> None:
            with torchscript_symbolics(opset):
                torch.onnx.export(model, args, tmp, dynamo=False, opset_version=opset, verbose=verbose,
                                  dynamic_axes=dynamic_axes, **names)

    replace_atomically(path, write)
    return path
