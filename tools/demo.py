#!/usr/bin/env python
"""The main job, in two parts.

1. The classification study (dcn_det/classification): a 4-layer CNN and its DCNv1 / DCNv2
   twins trained on digits at one scale and position, tested on the same distribution, on
   scaled + translated and on rotated digits, 3 seeds; and where the deformable layers sample.
2. Detection: train a plain and a deformable Faster R-CNN from scratch on the generated
   shapes data set, evaluate both on a validation split like the training data and on one
   with unseen scales/rotations/shears, and report AP side by side with pictures of where
   the deformable layers sample and where deformable RoI pooling moves its bins.

    python tools/demo.py                       # both (under 20 min on 2 CPU cores)
    python tools/demo.py --studies classification --mnist-root ~/data   # the study on real MNIST
    python tools/demo.py --iters 300           # shorter; --iters 3000 for a better model
    python tools/demo.py --seeds 3             # each detector 3 times (seeds 0, 1, 2): mean ± spread
    python tools/demo.py --models plain dcnv1 dcnv2
    python tools/demo.py --models rfcn_plain rfcn_dcnv2   # the R-FCN pair (configs/Demo/rfcn_*.yaml)
Interrupted? Run it again: training resumes from the last checkpoint, finished models
and evaluations are reused (delete output/demo to start over). The recipe and the runs that
chose it: docs/demo.md.
"""
import argparse
import os
import time

import cv2
import torch

from dcn_det.demo import detection_study, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    **{name: os.path.join(ROOT, "configs", "Demo", f"faster_rcnn_{name}.yaml") for name in ("plain", "dcnv1", "dcnv2")},
    **{name: os.path.join(ROOT, "configs", "Demo", f"{name}.yaml") for name in ("rfcn_plain", "rfcn_dcnv2")},
}


def classification_study(args):
    """The classification study (first in the report): (report lines, results.json rows,
    the table as printed, the figure's path)."""
    from dcn_det.classification import digits as digit_data
    from dcn_det.classification.study import StudyConfig, report_section, run_or_reuse, sampling_figure, study_table, verdicts

    train_size, test_size = args.digits
    cfg = StudyConfig(train_size=train_size, test_size=test_size, seeds=tuple(range(args.classification_seeds)),
                      mnist_root=args.mnist_root)
    print("\n=== classification study", flush=True)
    rows, models, seconds = run_or_reuse(cfg, os.path.join(args.output, "classification"))
    if args.mnist_root:
        glyph = digit_data.mnist_glyphs(args.mnist_root, False, 1, seed=7)[0][0]
    else:
        glyph = digit_data.generated_glyphs(1, seed=7)[0][0]  # a held-out digit for the figure
    figure = os.path.join(args.output, "classification_sampling.png")
    cv2.imwrite(figure, sampling_figure(models, glyph))
    lines = report_section(cfg, rows, seconds, models, figure, glyph)
    text = "\n".join([study_table(rows), *verdicts(rows)])
    return lines, rows + [{"study": "classification", "seconds": seconds}], text, figure


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["plain", "dcnv2"], choices=sorted(CONFIGS))
    parser.add_argument("--iters", type=int, default=1000,
                        help="training iterations per model (SOLVER.IMS_PER_BATCH images each: 16 in the Faster R-CNN configs)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train each model N times (cfg.SEED = --seed + i, under OUTPUT/NAME/seedI when N > 1) "
                             "and report mean ± std (min–max) per model and split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run (default 0)")
    parser.add_argument("--output", default=os.path.join(ROOT, "output", "demo"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--images", type=int, nargs=2, metavar=("TRAIN", "VAL"), default=None,
                        help="generate smaller splits (e.g. 40 16 for a smoke test); stored under OUTPUT/data")
    parser.add_argument("--studies", nargs="+", default=["classification", "detection"],
                        choices=["classification", "detection"], help="what to run (default: both, classification first)")
    parser.add_argument("--digits", type=int, nargs=2, metavar=("TRAIN", "TEST"), default=(4000, 2000),
                        help="classification study: training digits, and test digits per split (default 4000 2000)")
    parser.add_argument("--classification-seeds", type=int, default=3, help="classification study: seeds 0..N-1 (default 3)")
    parser.add_argument("--mnist-root", default=None, metavar="DIR",
                        help="classification study on real MNIST: the folder torchvision's MNIST class reads "
                             "(DIR/MNIST/raw/*-idx?-ubyte; never downloaded) instead of generated digits")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="KEY VALUE config overrides for every model (last, and not right after --models)")
    args = parser.parse_args()
    if args.iters < 10:
        parser.error("--iters must be >= 10")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.classification_seeds < 1:
        parser.error("--classification-seeds must be >= 1")
    if min(args.digits) < 10:
        parser.error("--digits: TRAIN and TEST must be >= 10")
    if args.mnist_root and not os.path.isdir(args.mnist_root):
        parser.error(f"--mnist-root {args.mnist_root!r} is not a folder")
    if args.threads:
        torch.set_num_threads(args.threads)

    os.makedirs(args.output, exist_ok=True)
    t0 = time.time()
    report, results, printed, figures = [], [], [], []
    if "classification" in args.studies:
        lines, rows, text, figure = classification_study(args)
        report += lines + [""]
        results += rows
        printed.append(text)
        figures.append(figure)
    if "detection" in args.studies:
        lines, rows, text, drawn = detection_study(args, CONFIGS)
        report += lines
        results += rows
        printed.append(text)
        figures += drawn
    minutes = (time.time() - t0) / 60
    header = ["# dcn_det demo report", "",
              f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
              f"{torch.get_num_threads()} torch threads; {minutes:.1f} min in all.", ""]
    write_json(os.path.join(args.output, "results.json"), results)
    with open(os.path.join(args.output, "report.md.tmp"), "w") as f:
        f.write("\n".join(header + report) + "\n")
    os.replace(os.path.join(args.output, "report.md.tmp"), os.path.join(args.output, "report.md"))
    print("\n" + "\n\n".join(printed))
    shown = ", ".join(figures)
    print(f"\nreport: {os.path.join(args.output, 'report.md')}" + (f", figures: {shown}" if shown else "") + f" ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
