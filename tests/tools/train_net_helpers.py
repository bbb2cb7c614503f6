"""Shared by the tools/train_net.py tests: a $DETECTRON2_DATASETS laid out like the real one
(coco/annotations/instances_val2017.json, coco/val2017/*.jpg) holding a few generated images
that use COCO's own category ids, tiny configs on top of the shipped ones, and a runner."""
import os
import subprocess
import sys
from pathlib import Path

from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

from tests.modeling.synthetic import draw_images, tiny_model_opts, write_coco

REPO = Path(__file__).resolve().parents[2]
TRAIN_NET = REPO / "tools" / "train_net.py"
CONFIGS = REPO / "configs" / "COCO-Detection"
THING_CATEGORIES = [{"id": c["id"], "name": c["name"]} for c in COCO_CATEGORIES if c["isthing"]]
# The generator's three shapes as COCO categories: person, car, dog.
SHAPE_CATEGORY_IDS = (1, 3, 18)

TINY_YAML = """\
_BASE_: "{base}"
DATASETS:
  TRAIN: ("coco_2017_val",)
  TEST: ("coco_2017_val",)
SOLVER:
  IMS_PER_BATCH: 2
  BASE_LR: 0.001
  WARMUP_ITERS: 2
  STEPS: ()
  MAX_ITER: {iterations}
  CHECKPOINT_PERIOD: {checkpoint_period}
OUTPUT_DIR: "{output_dir}"
"""


def write_datasets(root: Path, num_images: int = 4) -> Path:
    write_coco(
        str(root / "coco" / "annotations" / "instances_val2017.json"),
        str(root / "coco" / "val2017"),
        draw_images(num_images, seed=5),
        THING_CATEGORIES,
        category_ids=SHAPE_CATEGORY_IDS,
    )
    return root


def cli_opts():
    """The tiny model, as trailing KEY VALUE overrides (80 COCO classes, as the configs)."""
    return tiny_model_opts(num_classes=80) + ["MODEL.DCN.POOL_OFFSET_FC_DIMS", "[64, 64]"]


def write_config(directory: Path, output_dir: Path, base: str = "faster_rcnn_R_50_FPN_dconv_c3-c5_dpool_1x.yaml",
                 iterations: int = 4, checkpoint_period: int = 2) -> Path:
    config = directory / f"tiny_{Path(base).stem}.yaml"
    config.write_text(TINY_YAML.format(base=CONFIGS / base, iterations=iterations,
                                       checkpoint_period=checkpoint_period, output_dir=output_dir))
    return config


def train_net_command(args):
    return [sys.executable, str(TRAIN_NET), *map(str, args)]


def train_net_env(datasets_root):
    return dict(os.environ, DETECTRON2_DATASETS=str(datasets_root), PYTHONPATH=str(REPO))


def run(args, datasets_root, timeout=300):
    """Run tools/train_net.py to the end; ``.log`` is stdout + stderr."""
    result = subprocess.run(train_net_command(args), cwd=REPO, env=train_net_env(datasets_root),
                            capture_output=True, text=True, timeout=timeout)
    result.log = result.stdout + result.stderr
    return result
