"""The model benchmark group: Faster R-CNN R-50-FPN and R-FCN R-101 detectors, plain vs
deformable (inference and a training iteration), and the exported models in onnxruntime.
detectron2 (and onnx, onnxruntime) are imported inside the functions that need them, so
that importing this module, like dcn_det.ops, does not need them."""
import os
from typing import Dict, Iterator, List, Tuple

import torch

from .timing import Row, Settings, fmt_ms, progress, short_error, spread, time_interleaved, time_ms

# The model configs: configs/ at the root of the checkout this package runs from.
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")


# ------------------------------------------------------------- group: model

# The in-model target: a Faster R-CNN R-50-FPN training iteration with
# deformable convolution in every 3x3 conv of res3-res5, against the plain model,
# same input and everything else. Small input (2 cores): one 320x448 image with 3
# boxes, random initial weights. The deformable models get the plain model's weights
# (their offset/mask convs start at zero, as in training), so the RPN proposes the
# same boxes and the heads cost the same: with independent random weights the
# proposals, and with them roi_align's adaptive sampling cost, differ from model to
# model by more than the deformable layers cost.
# Model families: (case name, rows (row label, config under configs/, is the anchor),
# with backbone / bf16 / onnxruntime rows). Each family's ratios are to its plain model.
MODEL_FAMILIES = [
    ("Faster R-CNN R-50-FPN", [
        ("plain R-50-FPN", "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml", True),
        ("dconv c3-c5 (DCNv1)", "COCO-Detection/faster_rcnn_R_50_FPN_dconv_c3-c5_1x.yaml", False),
        ("mdconv c3-c5 (DCNv2)", "COCO-Detection/faster_rcnn_R_50_FPN_mdconv_c3-c5_1x.yaml", False),
        ("mdconv c3-c5 + mdpool (DCNv2)", "COCO-Detection/faster_rcnn_R_50_FPN_mdconv_c3-c5_mdpool_1x.yaml", False),
    ], True),
    ("R-FCN R-101", [
        ("plain R-FCN", "COCO-Detection/rfcn_R_101_1x.yaml", True),
        ("dconv c5 + dpsroi (DCNv1)", "COCO-Detection/rfcn_R_101_dconv_c5_dpsroi_1x.yaml", False),
        ("mdconv c3-c5 + mdpsroi (DCNv2)", "COCO-Detection/rfcn_R_101_mdconv_c3-c5_mdpsroi_1x.yaml", False),
    ], False),
]
MODEL_IMAGE = (320, 448)
MODEL_QUICK_IMAGE = (64, 96)


def _model_batch(device: str, seed: int, size: Tuple[int, int]):
    from detectron2.structures import Boxes, Instances

    gen = torch.Generator().manual_seed(seed)
    h, w = size
    image = (torch.rand(3, h, w, generator=gen) * 255).to(device)
    instances = Instances((h, w))
    instances.gt_boxes = Boxes(torch.tensor([[0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h],
                                             [0.4 * w, 0.3 * h, 0.9 * w, 0.8 * h],
                                             [0.2 * w, 0.5 * h, 0.4 * w, 0.9 * h]], device=device))
    instances.gt_classes = torch.tensor([1, 5, 17], device=device)
    return [{"image": image, "height": h, "width": w, "instances": instances}]


def _unit_modulation(model: torch.nn.Module) -> None:
    """DCNv2's modulation branches start at sigmoid(0) = 0.5, which scales the features,
    so a random-weight DCNv2 detector proposes other boxes than the plain one and its
    time moves with them (roi_align's samples grow with box size). A mask logit of 20
    (modulation 1 - 2e-9) with the zero offsets makes every DCNv2 model compute the plain
    model's function: the rows then differ only by the deformable layers' cost."""
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, "deform_modulated", False) and hasattr(module, "conv2_offset"):
                bias = module.conv2_offset.bias  # [offsets (2/3), mask logits (1/3)]
                bias[2 * bias.numel() // 3:] = 20.0
            if hasattr(module, "mask_fc"):  # mdpool: one logit per bin
                [layer for layer in module.mask_fc.modules() if isinstance(layer, torch.nn.Linear)][-1].bias.fill_(20.0)
            if getattr(module, "modulated", False) and hasattr(module, "conv_offset"):  # mdpsroi
                bias = module.conv_offset.bias
                bias[2 * bias.numel() // 3:] = 20.0


def bench_model(settings: Settings) -> Iterator[Row]:
    """fwd = inference of the model (eval mode); fwd+bwd = one training iteration
    (train mode: losses, then backward; no optimizer step). Backbone rows: forward of
    ResNet+FPN, and forward + backward of the sum of its outputs. A family's models are
    timed in turn, one call each per round (time_interleaved): timed one model after the
    other, a change of load between them moved a ratio by up to 0.2."""
    group = "model"
    size = MODEL_QUICK_IMAGE if settings.quick else MODEL_IMAGE
    image = f"1x3x{size[0]}x{size[1]}"
    try:
        from detectron2.modeling import build_model
        from detectron2.utils.events import EventStorage

        from dcn_det.engine import build_cfg
    except ImportError as exc:
        progress(f"[{group}] skipped: {short_error(exc)}")
        yield Row(group, f"{MODEL_FAMILIES[0][0]}, {image}", "all", "-", "float32",
                  note=f"needs detectron2 ({short_error(exc)})")
        return
    for device in settings.devices:
        batch = _model_batch(device, settings.seed, size)
        for family, members, backbone_rows in MODEL_FAMILIES:
            case = f"{family}, {image}"
            # The backbone alone: where the models differ (FPN family only).
            backbone_case = f"{family.split()[-1]} backbone only, {image}"
            models = {}
            shared = None  # the anchor's weights
            for impl, config, anchor in members:
                opts = ["MODEL.DEVICE", device, "MODEL.WEIGHTS", ""]
                torch.manual_seed(settings.seed)
                model = build_model(build_cfg(os.path.join(CONFIGS, config), opts))
                if shared is None:
                    shared = {k: v.clone() for k, v in model.state_dict().items()}
                else:
                    # The deformable models get the plain model's weights; their own
                    # offset/mask branches stay zero-initialised (offsets 0).
                    missing, unexpected = model.load_state_dict(shared, strict=False)
                    assert not unexpected and all("offset" in k or "mask_fc" in k for k in missing), (
                        missing, unexpected)
                _unit_modulation(model)
                models[impl] = model
            images = next(iter(models.values())).preprocess_image(batch).tensor

            def inference(model) -> None:
                model.eval()
                with torch.no_grad():
                    model(batch)

            def training_iteration(model) -> None:
                model.train()
                model.zero_grad(set_to_none=True)
                with EventStorage():  # the training losses log into one
                    sum(model(batch).values()).backward()

            def backbone_forward(model) -> None:
                with torch.no_grad():
                    model.backbone(images)

            def backbone_training(model) -> None:
                model.zero_grad(set_to_none=True)
                sum(f.sum() for f in model.backbone(images).values()).backward()

            # Every measurement takes the family's models in turn (time_interleaved).
            measurements = [(case, "float32", "fwd", inference), (case, "float32", "fwd+bwd", training_iteration)]
            if backbone_rows:
                measurements += [(backbone_case, "float32", "fwd", backbone_forward),
                                 (backbone_case, "float32", "fwd+bwd", backbone_training)]
                if device == "cpu":
                    # The backbone under bfloat16 autocast (bf16 products in our forward,
                    # oneDNN's bf16 convs): is it faster than float32 on this CPU?
                    measurements += [(backbone_case, "bf16 autocast", "fwd", backbone_forward),
                                     (backbone_case, "bf16 autocast", "fwd+bwd", backbone_training)]
            results = {}
            for row_case, dtype, name, step in measurements:
                progress(f"  [{group} {device}] {family} {row_case.split(',')[0]} {dtype} {name}: "
                         f"{len(models)} models in turn ...")
                steps = {impl: (lambda model=model, step=step: step(model)) for impl, model in models.items()}
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16 autocast"):
                    timed = time_interleaved(steps, device, settings.warmup[device], settings.repeats[device])
                for impl, (median, runs) in timed.items():
                    progress(f"    {impl}: median {fmt_ms(median)} ms{spread(runs)}")
                    results[(row_case, dtype, impl, name)] = median
            for impl, _, anchor in members:
                for row_case, dtype in dict.fromkeys((c, d) for c, d, _, _ in measurements):
                    yield Row(group, row_case, impl, device, dtype, results[(row_case, dtype, impl, "fwd")],
                              results[(row_case, dtype, impl, "fwd+bwd")], anchor=anchor)
                if (device == "cpu" and backbone_rows and settings.onnxruntime
                        and (not settings.quick or impl == members[-1][0])):
                    yield from onnxruntime_rows(group, {"detector": case, "backbone": backbone_case}, impl,
                                                models[impl], batch[0]["image"], settings)
            del models


def onnxruntime_rows(group: str, cases: Dict[str, str], impl: str, model, image: torch.Tensor,
                     settings: Settings) -> Iterator[Row]:
    """The same model exported to ONNX (dcn_det.onnx; whole detector through TracingAdapter and
    the TorchScript-based exporter, backbone through the dynamo exporter) and run by onnxruntime
    on the CPU with torch's thread count: inference only. The backbone row's check column is the
    largest |feature difference| against PyTorch on the timed image. --quick: DCNv2 only."""
    import tempfile

    label = f"{impl} onnxruntime"
    try:
        import onnxruntime

        import dcn_det.onnx
        from dcn_det.modeling.onnx_export import BackboneForExport, detector_for_export
    except ImportError as exc:
        yield Row(group, cases["detector"], label, "cpu", "float32", note=f"needs onnx, onnxruntime, onnxscript ({short_error(exc)})")
        return
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # like for like with the PyTorch rows
    model.eval()
    parts = (("detector", lambda: detector_for_export(model, image), False),
             ("backbone", lambda: BackboneForExport(model).eval(), True))
    with tempfile.TemporaryDirectory() as tmp:
        for part, make, dynamo in parts:
            path = os.path.join(tmp, part + ".onnx")
            progress(f"  [{group} cpu] {label} {part}: exporting ...")
            try:
                module = make()
                with torch.no_grad():
                    dcn_det.onnx.export(module, (image,), path, dynamo=dynamo)
                session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001  (report it in the table and go on)
                progress(f"  [{group} cpu] {label} {part}: export failed ({short_error(exc)})")
                yield Row(group, cases[part], label, "cpu", "float32", note=f"export failed: {short_error(exc)}")
                continue
            feed = {session.get_inputs()[0].name: image.numpy()}
            last: Dict[str, List] = {}
            fwd_ms, runs = time_ms(lambda: last.update(out=session.run(None, feed)), "cpu",
                                   settings.warmup["cpu"], settings.repeats["cpu"])
            progress(f"  [{group} cpu] {label} {part} fwd: median {fmt_ms(fwd_ms)} ms{spread(runs)}")
            row = Row(group, cases[part], label, "cpu", "float32", fwd_ms, None, note="onnxruntime: inference only")
            if part == "backbone":
                with torch.no_grad():
                    ref = module(image)
                row.check_fwd = max(float((torch.from_numpy(a) - b).abs().max()) for a, b in zip(last["out"], ref))
            yield row
