"""The demo's detection study (``tools/demo.py``, `make demo`): train plain and deformable
detectors from scratch on the generated shapes (configs/Demo), evaluate them on a validation
split like the training data and on one with unseen scales / rotations / shears, tabulate AP
(one run, or mean ± spread over seeds) and the cost, and draw where the deformable layers
sample and where deformable RoI pooling moves its bins. Interrupted runs resume; finished
models and evaluations are reused. The recipe and the runs that chose it: docs/demo.md."""
import dataclasses
import json
import os
import statistics
import time

import cv2
import torch

SPLITS = ("shapes_dcn_val", "shapes_dcn_val_scaled")
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
POOLING_BOXES = 3  # detections drawn in pooling_offsets.png
POOLING_SCAN = 20  # ... on the image, of the first 20 of shapes_dcn_val, with the most confident detection


def run_dir(output: str, name: str, seed_index: int, num_seeds: int) -> str:
    """OUTPUT/NAME for a single run (the layout resume has always used), OUTPUT/NAME/seedI
    for run I of several."""
    return os.path.join(output, name) if num_seeds == 1 else os.path.join(output, name, f"seed{seed_index}")


def model_cfg(name: str, config_file: str, args, seed_index: int = 0):
    """The demo's config of model ``name`` (``config_file``) for run ``seed_index``: CPU, the
    demo's schedule for ``args.iters`` iterations, output under ``args.output``."""
    from .engine import build_cfg

    iters = args.iters
    cfg = build_cfg(
        config_file,
        [
            "MODEL.DEVICE", "cpu",
            "OUTPUT_DIR", run_dir(args.output, name, seed_index, args.seeds),
            "SEED", str(args.seed + seed_index),
            "SOLVER.MAX_ITER", str(iters),
            "SOLVER.STEPS", f"({int(iters * 0.8)},)",
            # 300 of 1000: with 100, one DCNv2 seed in three never trained (docs/demo.md)
            "SOLVER.WARMUP_ITERS", str(min(300, iters * 3 // 10)),
            "SOLVER.CHECKPOINT_PERIOD", str(max(50, iters // 4)),
            "DATASETS.TEST", "()",  # evaluated below, once, with timing
            *args.opts,
        ],
    )
    cfg.freeze()
    return cfg


def train(name: str, cfg) -> float:
    """Train (or resume, or reuse) and return the median seconds per iteration."""
    from detectron2.utils.env import seed_all_rng

    from .engine import Trainer

    done = os.path.join(cfg.OUTPUT_DIR, "demo_done.json")
    if os.path.exists(done):
        print(f"{name}: already trained ({done}); delete it to train again", flush=True)
        return json.load(open(done))["s_per_iter"]
    seed_all_rng(cfg.SEED)  # weights, data order (the sampler draws its seed from numpy): one run per seed
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=True)
    trainer.train()
    times = [json.loads(line)["time"] for line in open(os.path.join(cfg.OUTPUT_DIR, "metrics.json")) if '"time"' in line]
    s_per_iter = statistics.median(times) if times else float("nan")
    write_json(done, {"s_per_iter": s_per_iter, "iters": cfg.SOLVER.MAX_ITER, "seed": cfg.SEED})
    return s_per_iter


def evaluate(name: str, cfg, model, split: str) -> dict:
    from detectron2.data import build_detection_test_loader
    from detectron2.evaluation import inference_on_dataset

    from .engine import build_evaluator

    cache = os.path.join(cfg.OUTPUT_DIR, f"eval_{split}.json")
    if os.path.exists(cache):
        return json.load(open(cache))
    loader = build_detection_test_loader(cfg, split)
    start = time.perf_counter()
    results = inference_on_dataset(model, loader, build_evaluator(cfg, split))
    ms_per_image = (time.perf_counter() - start) / len(loader.dataset) * 1000
    row = {m: results.get("bbox", {}).get(m, float("nan")) for m in METRICS}
    row["ms_per_image"] = ms_per_image
    write_json(cache, row)
    return row


def write_json(path: str, data) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)  # atomic: an interrupted run never leaves a half file


def table(rows) -> str:
    """One line per run: rows of (name, split, metrics, train s/iter)."""
    head = "| model | validation split | " + " | ".join(METRICS) + " | train s/iter | inference ms/image |"
    lines = [head, "|" + "---|" * (len(METRICS) + 4)]
    for name, split, r, s_iter in rows:
        cells = " | ".join(f"{r[m]:.1f}" for m in METRICS)
        lines.append(f"| {name} | {split} | {cells} | {s_iter:.2f} | {r['ms_per_image']:.0f} |")
    return "\n".join(lines)


def _spread(values) -> str:
    """mean ± sample std (min–max) of several runs."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} ({min(values):.1f}–{max(values):.1f})"


SUMMARY_METRICS = ("AP", "AP50", "AP75")


def seeds_table(rows) -> str:
    """Several seeds: one line per model and split, each cell mean ± std (min–max) over the
    seeds; rows of (name, split, metrics, train s/iter). A run with no detection at all
    (COCO evaluation gives nan) counts as 0 AP and is named in the runs column: leaving it
    out would hide a failed training."""
    groups = {}
    for name, split, r, s_iter in rows:
        groups.setdefault((name, split), []).append((r, s_iter))
    head = "| model | validation split | runs | " + " | ".join(SUMMARY_METRICS) + " | train s/iter |"
    lines = [head, "|" + "---|" * (len(SUMMARY_METRICS) + 4)]
    for (name, split), runs in groups.items():
        empty = sum(1 for r, _ in runs if r["AP"] != r["AP"])
        cells = " | ".join(_spread([r[m] if r[m] == r[m] else 0.0 for r, _ in runs]) for m in SUMMARY_METRICS)
        count = f"{len(runs)}" + (f" ({empty} with no detection: 0 AP)" if empty else "")
        s_iter = [t for _, t in runs]
        lines.append(f"| {name} | {split} | {count} | {cells} | {statistics.mean(s_iter):.2f} |")
    return "\n".join(lines)


def cost_ratios(rows) -> dict:
    """Median train s/iter of each model over its runs, divided by the plain model's
    ("plain" or "rfcn_plain"); {} when no plain model was trained."""
    per_model = {}
    for name, split, _, s_iter in rows:
        if split == SPLITS[0]:
            per_model.setdefault(name, []).append(s_iter)
    median = {name: statistics.median(v) for name, v in per_model.items()}
    ratios = {}
    for name, t in median.items():
        base = "rfcn_plain" if name.startswith("rfcn_") else "plain"
        if name != base and base in median:
            ratios[name] = t / median[base]
    return ratios


def most_confident(model, records):
    """The record whose best detection by ``model`` (fed each image at its size, as the
    figures are) scores highest (the first if none detects)."""
    from .visualization import input_at_size

    best, best_score = records[0], -1.0
    for record in records:
        with torch.no_grad():
            scores = model([input_at_size(cv2.imread(record["file_name"]))])[0]["instances"].scores
        if len(scores) and float(scores.max()) > best_score:
            best, best_score = record, float(scores.max())
    return best


def draw_figures(models, output: str) -> dict:
    """Write sampling_locations.png (two or more models) and pooling_offsets.png (any model
    with deformable RoI pooling) under ``output``; return {"sampling"|"pooling": path}."""
    from detectron2.data import DatasetCatalog

    from .data import CLASSES
    from .visualization import has_deformable_pooling, pooling_figure, sampling_figure

    figures = {}
    if len(models) > 1:
        record = DatasetCatalog.get("shapes_dcn_val_scaled")[0]
        image = cv2.imread(record["file_name"])
        centers = [(a["bbox"][0] + a["bbox"][2] / 2, a["bbox"][1] + a["bbox"][3] / 2) for a in record["annotations"][:2]]
        figures["sampling"] = os.path.join(output, "sampling_locations.png")
        cv2.imwrite(figures["sampling"], sampling_figure(models, image, centers))
    deformable = [model for _, model in models if has_deformable_pooling(model)]
    if deformable:
        record = most_confident(deformable[0], DatasetCatalog.get("shapes_dcn_val")[:POOLING_SCAN])
        image = cv2.imread(record["file_name"])
        gt = [(x, y, x + w, y + h) for x, y, w, h in (a["bbox"] for a in record["annotations"])]
        figures["pooling"] = os.path.join(output, "pooling_offsets.png")
        cv2.imwrite(figures["pooling"], pooling_figure(models, image, POOLING_BOXES, gt, CLASSES))
    return figures


def detection_study(args, configs):
    """Train and evaluate the detectors ``args.models`` (names of ``configs``: name -> YAML
    file): (report lines, results.json rows, the table as printed, figure paths). ``args``:
    models, iters, seeds, seed, output, images, opts as tools/demo.py parses them."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model
    from detectron2.utils.logger import setup_logger

    from .config import register
    from .data import SPLITS as DATA_SPLITS
    from .data import prepare, register_shapes_datasets

    register()  # the data sets and components
    setup_logger(name="detectron2")
    setup_logger(name="dcn_det")
    t0 = time.time()
    if args.images:
        sizes = {"shapes_dcn_train": args.images[0], **{split: args.images[1] for split in SPLITS}}
        register_shapes_datasets(
            os.path.join(args.output, "data"),
            {name: dataclasses.replace(spec, num_images=sizes[name]) for name, spec in DATA_SPLITS.items()},
        )
    prepare(["shapes_dcn_train", *SPLITS])

    rows, models, seeds = [], [], []
    for seed_index in range(args.seeds):  # seed-major: an interrupted --seeds run has whole seeds done
        for name in args.models:
            cfg = model_cfg(name, configs[name], args, seed_index)
            seeds.append(cfg.SEED)
            print(f"\n=== training {name} ({args.iters} iterations, seed {cfg.SEED}) -> {cfg.OUTPUT_DIR}", flush=True)
            s_iter = train(name, cfg)
            model = build_model(cfg).eval()
            DetectionCheckpointer(model).load(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
            if seed_index == 0:
                models.append((name, model))  # the figures show the first seed's models
            for split in SPLITS:
                print(f"=== evaluating {name} (seed {cfg.SEED}) on {split}", flush=True)
                rows.append((name, split, evaluate(name, cfg, model, split), s_iter, cfg.SEED))
    ims_per_batch = cfg.SOLVER.IMS_PER_BATCH

    figures = draw_figures(models, args.output)

    minutes = (time.time() - t0) / 60
    runs = [row[:4] for row in rows]
    text = table(runs) if args.seeds == 1 else seeds_table(runs)
    ratios = cost_ratios(runs)
    ratio_text = ", ".join(f"{name}/{'rfcn_plain' if name.startswith('rfcn_') else 'plain'} {r:.2f}x"
                           for name, r in ratios.items())
    report = [
        "## Detection: Faster R-CNN / R-FCN on generated shapes",
        "",
        f"{args.iters} iterations x {ims_per_batch} images per model, "
        f"from scratch, seed{'s' if args.seeds > 1 else ''} {', '.join(map(str, sorted(set(seeds))))}; "
        f"{minutes:.1f} min.",
        "",
        "COCO box AP (%) on the generated shapes data set: `shapes_dcn_val` has the training "
        "transformations, `shapes_dcn_val_scaled` smaller/larger, more rotated and sheared objects.",
        "",
    ]
    if args.seeds > 1:
        report += [f"{args.seeds} runs per model (seeds {args.seed}..{args.seed + args.seeds - 1}); "
                   "each cell: mean ± sample std (min–max) over the runs (a run with no detection counts as 0 AP); "
                   "train s/iter: mean.", ""]
    report.append(text)
    if ratio_text:
        report += ["", f"Training time per iteration relative to the plain model (median s/iter): {ratio_text}."]
    if args.seeds > 1:
        report += ["", "Per run:", "", table([(f"{n} (seed {seed})", s, r, t) for n, s, r, t, seed in rows])]
    if "sampling" in figures:
        report += ["", f"![sampling locations]({os.path.basename(figures['sampling'])})", "",
                   "Red: the 729 sampling locations of the last three 3x3 convs of res4 for the green activation point."]
    if "pooling" in figures:
        report += ["", f"![deformable RoI pooling bins]({os.path.basename(figures['pooling'])})", "",
                   "Deformable RoI pooling on the `shapes_dcn_val` image (of the first "
                   f"{POOLING_SCAN}) with the most confident detection, for each model that has it: its top "
                   f"{POOLING_BOXES} boxes (ground-truth boxes where it detects nothing), the regular 7x7 bins (grey) and "
                   "each bin moved by its learned offset (colour, arrow; the shift is offset x trans_std x RoI "
                   "width/height); dot size and opacity show the modulation mask."]
    rows_json = [{"study": "detection", "model": n, "split": s, "seed": seed, **r, "train_s_per_iter": t}
                 for n, s, r, t, seed in rows]
    printed = text + (f"\ntrain s/iter ratio: {ratio_text}" if ratio_text else "")
    return report, rows_json, printed, list(figures.values())
