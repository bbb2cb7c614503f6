"""The classification study of the demo: does deformable convolution let a CNN trained on
digits at one scale and position recognise them scaled, translated and rotated?

The experiment of the seed report (a 4-layer CNN with and without deformable convolution,
trained on MNIST, tested on plain and on scaled-translated digits), run for the plain CNN
and its DCNv1 and DCNv2 twins (:mod:`dcn_det.classification.model`), several seeds each,
on generated digits or real MNIST (:mod:`dcn_det.classification.digits`). Torch and
dcn_det.layers only: no detectron2.
"""
import dataclasses
import json
import os
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dcn_det.visualization import sampling_points, to_image

from . import digits
from .model import STRIDE, VARIANTS, DigitCNN


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    train_size: int = 10000
    test_size: int = 2000  # per split
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-3  # Adam; cosine decay to 0 over the training
    offset_lr_factor: float = 1.0  # the offset / mask branches' LR relative to lr
    channels: Tuple[int, int, int, int] = (32, 64, 64, 64)
    models: Tuple[str, ...] = VARIANTS
    seeds: Tuple[int, ...] = (0, 1, 2)
    data_seed: int = 0  # the digits (train and test) are the same for every model and seed
    mnist_root: Optional[str] = None  # real MNIST's IDX files instead of generated digits


def load_data(cfg: StudyConfig) -> Tuple[Tuple[torch.Tensor, torch.Tensor], Dict[str, Tuple[torch.Tensor, torch.Tensor]]]:
    """(train images [N, 1, C, C], labels), {split: (images, labels)}; training on the
    ``in_range`` placement, each test split from the same held-out glyphs."""
    if cfg.mnist_root:
        train_glyphs, train_labels = digits.mnist_glyphs(cfg.mnist_root, True, cfg.train_size, cfg.data_seed)
        test_glyphs, test_labels = digits.mnist_glyphs(cfg.mnist_root, False, cfg.test_size, cfg.data_seed)
    else:
        train_glyphs, train_labels = digits.generated_glyphs(cfg.train_size, cfg.data_seed)
        test_glyphs, test_labels = digits.generated_glyphs(cfg.test_size, cfg.data_seed + 1000)
    train = (digits.place(train_glyphs, "in_range", cfg.data_seed), torch.from_numpy(train_labels))
    tests = {split: (digits.place(test_glyphs, split, cfg.data_seed + 1 + i), torch.from_numpy(test_labels))
             for i, split in enumerate(digits.SPLITS)}
    return train, tests


def train_model(variant: str, seed: int, train: Tuple[torch.Tensor, torch.Tensor], cfg: StudyConfig) -> DigitCNN:
    torch.manual_seed(seed)
    model = DigitCNN(variant, cfg.channels)
    offsets = {id(p) for p in model.offset_parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in offsets], "lr": cfg.lr}]
    if offsets:
        groups.append({"params": model.offset_parameters(), "lr": cfg.lr * cfg.offset_lr_factor})
    optimizer = torch.optim.Adam(groups)
    images, labels = train
    steps_per_epoch = len(images) // cfg.batch_size
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, cfg.epochs * steps_per_epoch))
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(images), generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: DigitCNN, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy in %."""
    correct = sum(int((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
                  for i in range(0, len(images), batch))
    return 100.0 * correct / len(images)


def run_study(cfg: StudyConfig, log: Callable[[str], None] = print) -> Tuple[List[dict], Dict[str, DigitCNN], float]:
    """Train every model of ``cfg.models`` for every seed, test each on every split.
    Returns (rows ``{"study": "classification", "model", "split", "seed", "accuracy"}``,
    {model: the first seed's trained model} for the figure, seconds in all)."""
    start = time.perf_counter()
    train, tests = load_data(cfg)
    log(f"classification study: {len(train[0])} training digits ({'MNIST' if cfg.mnist_root else 'generated'}), "
        f"{cfg.test_size} per test split, models {', '.join(cfg.models)}, seeds {', '.join(map(str, cfg.seeds))}")
    rows, first = [], {}
    for seed in cfg.seeds:
        for variant in cfg.models:
            t0 = time.perf_counter()
            model = train_model(variant, seed, train, cfg)
            first.setdefault(variant, model)
            results = {split: accuracy(model, *tests[split]) for split in digits.SPLITS}
            rows += [{"study": "classification", "model": variant, "split": split, "seed": seed, "accuracy": acc}
                     for split, acc in results.items()]
            log(f"  {variant} seed {seed}: " + ", ".join(f"{s} {a:.1f} %" for s, a in results.items())
                + f" ({time.perf_counter() - t0:.0f} s)")
    return rows, first, time.perf_counter() - start


def _cell(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def study_table(rows: Sequence[dict]) -> str:
    """Markdown: one line per model, a column per split, each cell mean ± sample std over the seeds."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    lines = ["| model | seeds | " + " | ".join(digits.SPLITS) + " |", "|" + "---|" * (len(digits.SPLITS) + 2)]
    for m in models:
        cells = [_cell([r["accuracy"] for r in rows if r["model"] == m and r["split"] == s]) for s in digits.SPLITS]
        seeds = len({r["seed"] for r in rows if r["model"] == m})
        lines.append(f"| {m} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(rows: Sequence[dict], baseline: str = "plain") -> List[str]:
    """One sentence per deformable model and out-of-range split: better or worse than the
    plain CNN *beyond the spread* means every seed of one above every seed of the other;
    anything else is within the spread (no conclusion)."""
    out = []
    by = {}
    for r in rows:
        by.setdefault((r["model"], r["split"]), []).append(r["accuracy"])
    for model in dict.fromkeys(r["model"] for r in rows):
        if model == baseline:
            continue
        for split in digits.SPLITS[1:]:
            ours, base = by.get((model, split)), by.get((baseline, split))
            if not ours or not base:
                continue
            diff = statistics.mean(ours) - statistics.mean(base)
            if min(ours) > max(base):
                word = "better than"
            elif max(ours) < min(base):
                word = "worse than"
            else:
                word = "not distinguishable from"
            qualifier = "" if len(ours) > 1 and len(base) > 1 else " (one seed each: no spread to compare with)"
            out.append(f"{model} on {split}: {word} {baseline} ({diff:+.1f} points, mean of "
                       f"{len(ours)} vs {len(base)} seeds){qualifier}.")
    return out


def sampling_figure(models: Dict[str, DigitCNN], glyph: np.ndarray, scales=(0.6, 1.4), zoom: int = 6) -> np.ndarray:
    """A BGR picture: one row per scale of ``glyph`` (centred), one column per model: the
    81 image points where conv3 and conv4 sample for the centre output unit (red), the
    unit itself (green)."""
    rows = []
    for scale in scales:
        image = digits.placed_glyph(glyph, scale)
        size = image.shape[-1]
        gray = (255 - image[0, 0].numpy() * 255).clip(0, 255).astype(np.uint8)
        tiles = []
        for name, model in models.items():
            fields = model.offset_fields(image)
            centre = (size / 2 - 0.5 + 0.5) / STRIDE - 0.5  # image centre in feature cells
            start = (round(centre), round(centre))
            points = to_image(sampling_points(fields, start), STRIDE)
            tile = cv2.cvtColor(cv2.resize(gray, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
            for x, y in points:
                cv2.circle(tile, (int(round((x + 0.5) * zoom)), int(round((y + 0.5) * zoom))), 2, (0, 0, 255), -1, cv2.LINE_AA)
            unit = ((start[1] + 0.5) * STRIDE, (start[0] + 0.5) * STRIDE)
            cv2.drawMarker(tile, (int(unit[0] * zoom), int(unit[1] * zoom)), (0, 170, 0), cv2.MARKER_CROSS, 14, 2)
            cv2.putText(tile, f"{name}, digit x{scale:g}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(cv2.copyMakeBorder(tile, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(200, 200, 200)))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def spread_ratio(model: DigitCNN, glyph: np.ndarray, small: float = 0.6, large: float = 1.4) -> float:
    """How much wider the 81 sampling points spread on the large digit than on the small one
    (ratio of the points' root-mean-square distances from their mean); 1 for the plain CNN."""
    spreads = []
    for scale in (small, large):
        image = digits.placed_glyph(glyph, scale)
        centre = (image.shape[-1] / 2) / STRIDE - 0.5
        points = sampling_points(model.offset_fields(image), (round(centre), round(centre)))
        spreads.append(float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean())))
    return spreads[1] / spreads[0]


def _config_key(cfg: StudyConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))  # tuples as lists, as read back


def run_or_reuse(cfg: StudyConfig, out_dir: str, log: Callable[[str], None] = print):
    """:func:`run_study`, or what an earlier run with the same ``cfg`` left in ``out_dir``
    (``study.json`` and the first seed's models ``<model>.pth``, written atomically, the
    JSON last: an interrupted run is redone, never half reused)."""
    record = os.path.join(out_dir, "study.json")
    if os.path.exists(record):
        saved = json.load(open(record))
        if saved["config"] == _config_key(cfg):
            models = {}
            for variant in cfg.models:
                model = DigitCNN(variant, cfg.channels)
                model.load_state_dict(torch.load(os.path.join(out_dir, f"{variant}.pth"), weights_only=True))
                models[variant] = model.eval()
            log(f"classification study: reusing {record} (delete it to run the study again)")
            return saved["rows"], models, saved["seconds"]
        log(f"classification study: {record} has other settings; running it again")
    rows, models, seconds = run_study(cfg, log)
    os.makedirs(out_dir, exist_ok=True)
    for variant, model in models.items():
        _atomic(os.path.join(out_dir, f"{variant}.pth"), lambda f, m=model: torch.save(m.state_dict(), f))
    _atomic(record, lambda f: f.write(json.dumps({"config": _config_key(cfg), "rows": rows, "seconds": seconds},
                                                 indent=1).encode()))
    return rows, models, seconds


def _atomic(path: str, write) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def report_section(cfg: StudyConfig, rows: Sequence[dict], seconds: float, models: Dict[str, DigitCNN],
                   figure: Optional[str] = None, glyph: Optional[np.ndarray] = None) -> List[str]:
    """The demo report's classification part (markdown lines): the setting, the table, the
    verdicts, and the figure with how the sampling spread changes from a small to a large digit."""
    source = f"Real MNIST ({cfg.mnist_root})" if cfg.mnist_root else "Generated digits (Hershey fonts, stroke and shape jitter)"
    lines = [
        "## Classification: digits at one scale, tested scaled and rotated",
        "",
        f"{source}: {cfg.train_size} training digits, all at one scale and position (`in_range`: the "
        f"28x28 glyph centred on a {digits.CANVAS}x{digits.CANVAS} canvas), {cfg.test_size} held-out digits per split; "
        f"`scaled`: {digits.SCALE_RANGE[0]:g}-{digits.SCALE_RANGE[1]:g}x and translated, `rotated`: "
        f"±{digits.ROTATION_RANGE:g}°. A 4-layer CNN (global average pooling, then one linear layer); "
        "its DCNv1 / DCNv2 twins have deformable conv3 and conv4. "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}, Adam lr {cfg.lr:g} with cosine decay, no augmentation; "
        f"seeds {', '.join(map(str, cfg.seeds))}. Top-1 accuracy (%), mean ± sample std over the seeds; "
        f"{seconds:.0f} s in all.",
        "",
        study_table(rows),
        "",
    ]
    lines += ["Against the plain CNN (better / worse only beyond the spread: every seed of one above every "
              "seed of the other):", ""] + [f"- {v}" for v in verdicts(rows)]
    lines += ["", "The settings tried before these, and the seed report's numbers: docs/demo.md "
              "(\"The classification study\")."]
    if figure is not None and glyph is not None:
        ratios = {name: spread_ratio(model, glyph) for name, model in models.items()}
        lines += [
            "",
            f"![sampling locations on digits]({os.path.basename(figure)})",
            "",
            "Red: the 81 image points where conv3 and conv4 sample for the output unit at the centre (green), on a "
            "held-out digit at 0.6x and at 1.4x, for the first seed's models. How much wider the points spread "
            "on the large digit than on the small one (root-mean-square distance from their mean): "
            + ", ".join(f"{name} {r:.2f}x" for name, r in ratios.items())
            + " (the plain CNN's fixed grid: 1.00x).",
        ]
        flat = [name for name, r in ratios.items() if name != "plain" and r < 1.1]
        if flat:
            lines[-1] += (f" The points of {' and '.join(flat)} do not grow with the digit (less than 10 % wider "
                          "on the large one): what these layers learned at one scale is not a scale-adaptive field.")
    return lines
