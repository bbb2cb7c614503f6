"""Why a trained test model's outcome depends on the CPU loop variant (issue 20; the numbers in
docs/reliability.md, "Trained-model tests and the CPU instruction set").

Two studies of the training test's tiny C4 DCNv1 model (tests/modeling/test_training.py):

``replay``: trains it for --iters iterations with the variant this machine selects, records
every dcn_det operator call of the first and the last iteration (the exact layer inputs, with
the fused-path tile sizes and channel counts the test uses), and replays each call in float32
under every CPU loop variant here (forced in process). It prints, per operator, variant and
result (output, each gradient), the worst error against the float64 reference implementation
(tests/ops/*_reference.py) relative to the reference's largest magnitude, next to the fuzzer's
float32 tolerance, and the worst difference between the variants.

``drift``: trains the same model once per configuration (ATEN_CPU_CAPABILITY default / avx2 /
avx512 where present, and 1 thread), each in its own process, and prints how far each run's
loss and final weights are from the selected variant's run, and what evaluation sees (the
number of detections scoring >= 0.01, the best score, COCO AP at that threshold).

    .venv/bin/python -m tests.studies.cpu_isa_drift replay [--iters 40]
    .venv/bin/python -m tests.studies.cpu_isa_drift drift [--iters 40]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAMILY = "faster_rcnn_c4_dcnv1"
RTOL_FLOAT32 = 2e-5  # tests/ops/fuzz.py RTOL[torch.float32]


def _dataset(root):
    from detectron2.data.datasets import register_coco_instances

    from tests.modeling.conftest import SHAPE_CATEGORIES
    from tests.modeling.synthetic import draw_images, write_coco

    json_file, image_root = os.path.join(root, "instances.json"), os.path.join(root, "images")
    write_coco(json_file, image_root, draw_images(12, seed=0), SHAPE_CATEGORIES)  # as the coco_shapes fixture
    register_coco_instances("isa_study_shapes", {}, json_file, image_root)
    return "isa_study_shapes"


def _train(iters, workdir, hook=None):
    """The training test's run (same config, seed, data and optimizer); returns cfg, model,
    losses. ``hook(trainer)`` is registered before training (e.g. to record op calls)."""
    from tests.modeling import test_training as t

    cfg = t.tiny_cfg(
        str(t.CONFIGS / t.FAMILIES[FAMILY]),
        t.tiny_training_opts(iters)
        + ["DATASETS.TRAIN", f"('{_dataset(workdir)}',)", "DATASETS.TEST", "()", "OUTPUT_DIR", workdir],
    )
    t._seed()
    trainer = t.AdamTrainer(cfg)
    trainer.resume_or_load(resume=False)
    if hook is not None:
        hook(trainer)
    trainer.train()
    losses = [value for value, _ in trainer.storage.history("total_loss").values()]
    return cfg, trainer.model, losses


# --- replay ------------------------------------------------------------------------------------


class _Recorder:
    """Wraps the layers' op functions; keeps detached copies of the calls of chosen iterations."""

    def __init__(self, iterations):
        import dcn_det.layers.deform_conv as conv_mod
        import dcn_det.layers.deform_roi_pool as pool_mod

        self.iterations, self.iteration, self.calls = set(iterations), 0, []
        for module, name in ((conv_mod, "deform_conv2d"), (pool_mod, "deform_psroi_pool")):
            setattr(module, name, self._wrap(name, getattr(module, name)))  # for this process's life

    def _wrap(self, name, fn):
        def recorded(*args, **kwargs):
            if self.iteration in self.iterations:
                copy = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]
                self.calls.append((name, self.iteration, copy, dict(kwargs)))
            return fn(*args, **kwargs)

        return recorded


def _run(name, args, kwargs, reference, dtype=torch.float32):
    """dcn_det's op in ``dtype`` (or the float64 reference) with a fixed output gradient:
    {"out": output, "gradI": gradient of argument I} in float64."""
    from dcn_det.ops import deform_conv2d, deform_psroi_pool
    from tests.ops.deform_conv2d_reference import deform_conv2d_ref
    from tests.ops.deform_psroi_pool_reference import deform_psroi_pool_reference

    dtype = torch.float64 if reference else dtype
    # Differentiable inputs: deform_conv2d's input, offset, weight, bias, mask; the pool's
    # input and offset (rois are coordinates).
    grad_slots = {"deform_conv2d": (0, 1, 2, 3, 7), "deform_psroi_pool": (0, 2)}[name]
    inputs = []
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            a = a.to(dtype).requires_grad_(i in grad_slots)
        inputs.append(a)
    fn = {("deform_conv2d", False): deform_conv2d, ("deform_conv2d", True): deform_conv2d_ref,
          ("deform_psroi_pool", False): deform_psroi_pool, ("deform_psroi_pool", True): deform_psroi_pool_reference}
    out = fn[name, reference](*inputs, **kwargs)
    g = torch.Generator().manual_seed(0)
    grad_out = torch.randn(out.shape, generator=g, dtype=torch.float64).to(dtype)
    wrt = [(i, a) for i, a in enumerate(inputs) if isinstance(a, torch.Tensor) and a.requires_grad]
    grads = torch.autograd.grad(out, [a for _, a in wrt], grad_out, allow_unused=True)
    results = {"out": out.detach().double()}
    for (i, _), grad in zip(wrt, grads):
        if grad is not None:
            results[f"grad{i}"] = grad.double()
    return results


def replay(args):
    from dcn_det.ops import available_cpu_isas, cpu_isa
    from dcn_det.ops._cpu_isa import forced_cpu_isa

    selected = cpu_isa()
    with tempfile.TemporaryDirectory() as workdir:
        recorder = _Recorder({0, args.iters - 1})

        def count_iterations(trainer):
            from detectron2.engine import HookBase

            class Count(HookBase):
                def after_step(self):
                    recorder.iteration += 1

            trainer.register_hooks([Count()])

        _train(args.iters, workdir, count_iterations)
    print(f"recorded {len(recorder.calls)} op calls (iterations 0 and {args.iters - 1}), trained with {selected}; "
          f"replaying under {available_cpu_isas()}", flush=True)
    worst, between, exact = {}, {}, {}  # keys (op, iteration, variant, result)
    for k, (name, iteration, call_args, kwargs) in enumerate(recorder.calls):
        ref = _run(name, call_args, kwargs, reference=True)
        per_isa, per_isa64 = {}, {}
        for isa in available_cpu_isas():
            with forced_cpu_isa(isa):
                per_isa[isa] = _run(name, call_args, kwargs, reference=False)
                per_isa64[isa] = _run(name, call_args, kwargs, reference=False, dtype=torch.float64)
        for isa, in64 in per_isa64.items():
            for key, value in per_isa[isa].items():
                scale = ref[key].abs().max().item() or 1.0
                at = (name, iteration, isa, key)
                worst[at] = max(worst.get(at, 0.0), (value - ref[key]).abs().max().item() / scale)
                exact[at] = max(exact.get(at, 0.0), (in64[key] - ref[key]).abs().max().item() / scale)
                d = (value - per_isa[selected][key]).abs().max().item() / scale
                between[at] = max(between.get(at, 0.0), d)
    shapes = sorted({(n, tuple(a[0].shape), tuple(a[2].shape) if n == "deform_conv2d" else tuple(a[1].shape))
                     for n, _, a, _ in recorder.calls})
    print("\ncall shapes (op, input, weight or rois):")
    for shape in shapes:
        print(f"  {shape}")
    print("\nWorst error relative to the float64 reference's largest magnitude, per op call kind; "
          f"the fuzzer's float32 tolerance is {RTOL_FLOAT32:.0e}. grad1 of deform_conv2d and grad2 of "
          "deform_psroi_pool are the offset gradients (one-sided at integer points).")
    print(f"\n| op | iteration | variant | result | float32 vs reference | float64 vs reference | "
          f"float32 vs {selected} float32 |")
    print("|---|---|---|---|---|---|---|")
    for at in sorted(worst):
        name, iteration, isa, key = at
        print(f"| {name} | {iteration} | {isa} | {key} | {worst[at]:.2e} | {exact[at]:.2e} | {between[at]:.2e} |")
    # A bug would show as float64 disagreeing with the reference (the math) or as variants
    # disagreeing beyond float32 rounding (a loop variant).
    wrong = [at for at in worst if exact[at] > 1e-9 or between[at] > RTOL_FLOAT32]
    print("\nfloat64 agrees with the reference and the variants with each other" if not wrong
          else f"\nDISAGREEMENT: {wrong}")
    return 1 if wrong else 0


# --- drift -------------------------------------------------------------------------------------


def _train_and_evaluate(args):
    """One configuration's run (called in a fresh process): losses, weights, evaluation."""
    from detectron2.data import build_detection_test_loader
    from detectron2.evaluation import inference_on_dataset

    from dcn_det.engine import build_evaluator
    from dcn_det.ops import cpu_isa

    with tempfile.TemporaryDirectory() as workdir:
        cfg, model, losses = _train(args.iters, workdir)
        dataset, eval_dir = cfg.DATASETS.TRAIN[0], os.path.join(workdir, "eval")
        model.roi_heads.box_predictor.test_score_thresh = 0.01  # the test's threshold before issue 20
        results = inference_on_dataset(model, build_detection_test_loader(cfg, dataset),
                                       build_evaluator(cfg, dataset, eval_dir))
        with open(os.path.join(eval_dir, "coco_instances_results.json")) as f:
            scores = [d["score"] for d in json.load(f)]
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        torch.save(weights, args.out + ".weights.pt")
    with open(args.out, "w") as f:
        json.dump({"isa": cpu_isa(), "threads": torch.get_num_threads(), "losses": losses, "detections": len(scores),
                   "top_score": max(scores, default=0.0), "ap": results["bbox"]["AP"]}, f)


def drift(args):
    from dcn_det.ops import available_cpu_isas, cpu_isa

    runs = [("selected", {})]
    runs += [(f"ATEN_CPU_CAPABILITY={'default' if i == 'baseline' else i}",
              {"ATEN_CPU_CAPABILITY": "default" if i == "baseline" else i}) for i in available_cpu_isas()
             if i != cpu_isa()]
    runs.append(("1 thread", {"OMP_NUM_THREADS": "1"}))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, env in runs:
            path = os.path.join(tmp, f"{len(out)}.json")
            print(f"training: {label}", flush=True)
            subprocess.run([sys.executable, "-m", "tests.studies.cpu_isa_drift", "_one", "--iters", str(args.iters), "--out", path],
                           env=dict(os.environ, **env), check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
            with open(path) as f:
                out[label] = json.load(f)
            out[label]["weights"] = torch.load(path + ".weights.pt")
    ref = out["selected"]
    marks = [i for i in (0, 1, 2, 3, 5, 10, 20, args.iters - 1) if i < args.iters]
    print(f"\n| run | loops | threads | rel. loss diff vs selected at iteration {', '.join(map(str, marks))} | "
          f"first iteration > 1e-6 | final weights rel. diff | mean loss first 5 -> last 5 | detections >= 0.01 | "
          f"top score | AP |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in out.items():
        rel = [abs(a - b) / abs(b) for a, b in zip(r["losses"], ref["losses"])]
        first = next((i for i, v in enumerate(rel) if v > 1e-6), "-")
        w = (r["weights"] - ref["weights"]).norm().item() / ref["weights"].norm().item()
        l5 = sum(r["losses"][:5]) / 5, sum(r["losses"][-5:]) / 5
        ap = "NaN" if math.isnan(r["ap"]) else f"{r['ap']:.2f}"
        print(f"| {label} | {r['isa']} | {r['threads']} | {', '.join(f'{rel[i]:.1e}' for i in marks)} | {first} | "
              f"{w:.3f} | {l5[0]:.3f} -> {l5[1]:.3f} | {r['detections']} | {r['top_score']:.4f} | {ap} |")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=["replay", "drift", "_one"])
    parser.add_argument("--iters", type=int, default=40, help="training iterations (the test's 40)")
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.iters < 1:
        parser.error(f"--iters must be >= 1, got {args.iters}")
    if args.study == "_one":
        return _train_and_evaluate(args)
    return {"replay": replay, "drift": drift}[args.study](args)


if __name__ == "__main__":
    sys.exit(main())
