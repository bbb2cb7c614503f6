#!/usr/bin/env python
"""Export a dcn_det / detectron2 model to ONNX, optionally check it in onnxruntime.

    python tools/export_onnx.py --config-file configs/Demo/faster_rcnn_dcnv2.yaml \\
        --weights output/demo/dcnv2/model_final.pth --output dcnv2.onnx --check img1.jpg img2.jpg
    python tools/export_onnx.py ... --part backbone            # ResNet(-FPN) only, dynamo exporter
    python tools/export_onnx.py ... --opts MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.3   (--opts last)

What is exported (printed at the end, with the file's inputs and outputs):
- ``--part detector`` (default): the whole detector, image in, boxes/classes/scores out
  (preprocessing, backbone, RPN, ROI heads, NMS) through detectron2's TracingAdapter and the
  TorchScript-based exporter. The dynamo exporter (``--exporter dynamo``) cannot capture it:
  torch.export stops inside detectron2 (data-dependent padding in ImageList.from_tensors,
  ``if not valid_mask.all()`` in find_top_rpn_proposals); the tool then says so and exits 1.
- ``--part backbone``: normalisation + ResNet/ResNet-FPN, image in, feature maps out; the
  dynamo exporter by default (the TorchScript one works too).

The graph has a fixed input size, ``--input-size H W`` (default: INPUT.MIN_SIZE_TEST square,
capped at INPUT.MAX_SIZE_TEST): feed it a float32 [3, H, W] image, pixel values 0-255 in
INPUT.FORMAT channel order. ``--check`` resizes each image to that size, runs the PyTorch
model and the ONNX file on it and prints the largest differences.
"""
import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

PARTS = ("detector", "backbone")
DEFAULT_EXPORTER = {"detector": "torchscript", "backbone": "dynamo"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="model config (YAML)")
    parser.add_argument("--weights", required=True,
                        help="checkpoint to load (.pth / .pkl, as MODEL.WEIGHTS); '' keeps the random initialisation")
    parser.add_argument("--output", required=True, help="ONNX file to write")
    parser.add_argument("--part", choices=PARTS, default="detector", help="what to export (default: detector)")
    parser.add_argument("--exporter", choices=("torchscript", "dynamo"), default=None,
                        help="torch.onnx exporter (default: torchscript for the detector, dynamo for the backbone)")
    parser.add_argument("--opset", type=int, default=19, help="ONNX opset, >= 19 (DeformConv); default 19")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="fixed input image size of the graph (default: INPUT.MIN_SIZE_TEST square)")
    parser.add_argument("--check", nargs="+", metavar="IMAGE", default=[],
                        help="images to run in PyTorch and onnxruntime; prints the largest differences")
    parser.add_argument("--max-diff", type=float, default=None,
                        help="with --check: exit 1 if a difference exceeds this (boxes in pixels, scores, features)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ... (last)")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Errors that name the argument, before anything slow happens."""
    if not os.path.isfile(args.config_file):
        parser.error(f"--config-file: no such file: {args.config_file}")
    if args.weights and not os.path.isfile(args.weights):
        parser.error(f"--weights: no such file: {args.weights} (use '' for random weights)")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        parser.error(f"--output: directory {out_dir} does not exist")
    if os.path.isdir(args.output):
        parser.error(f"--output: {args.output} is a directory; give a file name such as model.onnx")
    if args.opset < 19:
        parser.error(f"--opset must be >= 19 (ONNX DeformConv appeared in opset 19), got {args.opset}")
    if args.input_size is not None and min(args.input_size) < 1:
        parser.error(f"--input-size: H and W must be positive, got {args.input_size}")
    missing = [p for p in args.check if not os.path.isfile(p)]
    if missing:
        parser.error(f"--check: no such image(s): {', '.join(missing)}")
    if args.max_diff is not None and not args.check:
        parser.error("--max-diff needs --check")
    if len(args.opts) % 2:
        parser.error(f"--opts: expected KEY VALUE pairs, got {len(args.opts)} items")


def build_model_and_cfg(args):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from dcn_det.engine import build_cfg

    cfg = build_cfg(args.config_file, list(args.opts) + ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", args.weights])
    model = build_model(cfg).eval()
    if args.weights:
        DetectionCheckpointer(model).load(args.weights)
    return cfg, model


def input_size(cfg, args) -> Tuple[int, int]:
    if args.input_size is not None:
        return tuple(args.input_size)
    side = cfg.INPUT.MIN_SIZE_TEST
    side = min(side, cfg.INPUT.MAX_SIZE_TEST) if cfg.INPUT.MAX_SIZE_TEST > 0 else side
    return side, side


def load_image(path: str, cfg, size: Tuple[int, int]) -> torch.Tensor:
    """[3, H, W] float32, 0-255, INPUT.FORMAT order, resized to exactly ``size``."""
    from detectron2.data import detection_utils
    from detectron2.data.transforms import ResizeTransform

    image = detection_utils.read_image(path, format=cfg.INPUT.FORMAT)
    image = ResizeTransform(image.shape[0], image.shape[1], size[0], size[1]).apply_image(image)
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)), dtype=torch.float32)


def export(args, cfg, model, size) -> Tuple[torch.nn.Module, List[str], List[str]]:
    """Writes args.output; returns (the exported module, input names, output names)."""
    import dcn_det.onnx
    from dcn_det.modeling.onnx_export import DETECTOR_OUTPUTS, BackboneForExport, detector_for_export

    example = torch.rand(3, *size, generator=torch.Generator().manual_seed(0)) * 255
    if args.part == "detector":
        module, outputs = detector_for_export(model, example), list(DETECTOR_OUTPUTS)
    else:
        module = BackboneForExport(model).eval()
        outputs = list(module.names)
    dynamo = args.exporter == "dynamo"
    with torch.no_grad():
        dcn_det.onnx.export(module, (example,), args.output, opset=args.opset, dynamo=dynamo,
                            input_names=["image"], output_names=outputs)
    return module, ["image"], outputs


def describe(path: str) -> List[str]:
    import onnx

    model = onnx.load(path)
    ops: Dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    custom = sorted({n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})

    def shape(v):
        return "[" + ", ".join(d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim) + "]"

    return [
        f"  inputs:  {', '.join(f'{v.name} {shape(v)}' for v in model.graph.input)}",
        f"  outputs: {', '.join(f'{v.name} {shape(v)}' for v in model.graph.output)}",
        f"  opset {model.opset_import[0].version}, IR version {model.ir_version}, {len(model.graph.node)} nodes "
        f"({ops.get('DeformConv', 0)} DeformConv); custom op domains: {', '.join(custom) or 'none'}",
    ]


def match_detections(ref: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> Tuple[int, float, float]:
    """Pairs each PyTorch detection (boxes, classes, scores) with the closest onnxruntime one of
    the same class (greedy, highest score first), so that detections with tied scores listed in
    another order still pair up. Returns (unpaired count, max box difference, max score difference)."""
    ref_boxes, ref_classes, ref_scores = ref
    boxes, classes, scores = got
    free = np.ones(len(boxes), dtype=bool)
    box_diff = score_diff = 0.0
    for i in np.argsort(-ref_scores, kind="stable"):
        candidates = np.nonzero(free & (classes == ref_classes[i]))[0]
        if not len(candidates):
            continue
        cost = np.abs(boxes[candidates] - ref_boxes[i]).max(axis=1) + np.abs(scores[candidates] - ref_scores[i])
        j = candidates[int(np.argmin(cost))]
        free[j] = False
        box_diff = max(box_diff, float(np.abs(boxes[j] - ref_boxes[i]).max()))
        score_diff = max(score_diff, float(abs(scores[j] - ref_scores[i])))
    unpaired = int(free.sum()) + max(len(ref_boxes) - len(boxes), 0)
    return unpaired, box_diff, score_diff


def check(args, cfg, module, input_names, output_names, size) -> float:
    """Runs each --check image in PyTorch and onnxruntime; prints and returns the largest difference."""
    import onnxruntime

    session = onnxruntime.InferenceSession(args.output, providers=["CPUExecutionProvider"])
    worst = 0.0
    for path in args.check:
        image = load_image(path, cfg, size)
        with torch.no_grad():
            ref = [t.numpy() for t in module(image)]
        got = session.run(output_names, {input_names[0]: image.numpy()})
        if args.part == "detector":
            unpaired, box_diff, score_diff = match_detections(ref[:3], got[:3])
            worst = max(worst, box_diff, score_diff, float("inf") if unpaired else 0.0)
            print(f"check {path}: {len(ref[0])} detections in PyTorch, {len(got[0])} in onnxruntime, "
                  f"{unpaired} unpaired; max |box diff| {box_diff:.3g} px, max |score diff| {score_diff:.3g}")
        else:
            diffs = [float(np.abs(a - b).max()) for a, b in zip(ref, got)]
            scale = max(float(np.abs(a).max()) for a in ref)
            worst = max(worst, *diffs)
            print(f"check {path}: max |feature diff| {max(diffs):.3g} (largest |feature| {scale:.3g}); "
                  + ", ".join(f"{n} {d:.3g}" for n, d in zip(output_names, diffs)))
    return worst


def torch_export_failure(message: str) -> str:
    """The exception and the model line it came from, out of torch.onnx's long report."""
    lines = message.splitlines()
    summary = next((l.strip() for l in lines if l.startswith("<class '")), lines[0] if lines else "")
    try:
        where = lines[lines.index("The following call raised this error:") + 1].strip()
    except ValueError:
        where = ""
    return f"{summary[:300]} {('(at ' + where + ')') if where else ''}".strip()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    args.exporter = args.exporter or DEFAULT_EXPORTER[args.part]
    cfg, model = build_model_and_cfg(args)
    size = input_size(cfg, args)
    what = ("whole detector (preprocessing, backbone, RPN, ROI heads, NMS)" if args.part == "detector"
            else "backbone (normalisation, padding, " + cfg.MODEL.BACKBONE.NAME + ")")
    print(f"exporting the {what} of {cfg.MODEL.META_ARCHITECTURE} with the {args.exporter} exporter, "
          f"opset {args.opset}, input image [3, {size[0]}, {size[1]}]", flush=True)
    try:
        module, input_names, output_names = export(args, cfg, model, size)
    except Exception as exc:  # noqa: BLE001  (say which part failed and what to try)
        if type(exc).__name__ == "TorchExportError" and args.part == "detector":
            print(f"error: torch.export (the dynamo exporter) cannot capture detectron2's detector: "
                  f"{torch_export_failure(str(exc))}\n"
                  "detectron2's data-dependent steps (image padding in ImageList.from_tensors, the checks in "
                  "find_top_rpn_proposals) stop it. Use --exporter torchscript for the whole detector, or "
                  "--part backbone.", file=sys.stderr)
        else:
            first = (str(exc).strip().splitlines() or [""])[0]
            print(f"error: export failed ({type(exc).__name__}): {first}", file=sys.stderr)
        print("nothing was written", file=sys.stderr)
        return 1
    print(f"exported {args.output} ({os.path.getsize(args.output) / 2**20:.1f} MiB): the {what}")
    print("\n".join(describe(args.output)))
    if args.check:
        worst = check(args, cfg, module, input_names, output_names, size)
        if args.max_diff is not None and worst > args.max_diff:
            print(f"error: largest difference {worst:.3g} exceeds --max-diff {args.max_diff}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
