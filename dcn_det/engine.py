"""Training / evaluation plumbing shared by tools/train_net.py, the demo and other projects:
config setup, evaluators chosen by data set, and a clear error for missing data sets."""
import logging
import os
from typing import Iterable, Optional

import torch

from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import DefaultTrainer
from detectron2.solver import build_optimizer as build_sgd_optimizer
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator
from detectron2.utils import comm

from .config import add_dcn_config, use_dcn_builders
from .sem_seg_training import build_lr_scheduler, build_sem_seg_evaluator, build_sem_seg_train_loader, is_semantic_segmentation
from .solver import build_optimizer as build_optimizer_with_lr_factors

logger = logging.getLogger(__name__)


def build_cfg(config_file: str = "", opts: Iterable[str] = ()) -> CfgNode:
    """detectron2 defaults + dcn_det keys, then ``config_file`` and ``KEY VALUE`` overrides."""
    cfg = add_dcn_config(get_cfg())
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    use_dcn_builders(cfg)
    return cfg


class DatasetNotFoundError(FileNotFoundError):
    """A configured data set is not registered or its files are missing."""


def check_datasets(names: Iterable[str]) -> None:
    """Raise :class:`DatasetNotFoundError` naming the missing files and DETECTRON2_DATASETS
    when a data set's annotation file, image folder or VOC directory does not exist."""
    root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    for name in names:
        if name not in DatasetCatalog.list():
            raise DatasetNotFoundError(f"data set '{name}' is not registered (see DatasetCatalog.list())")
        meta = MetadataCatalog.get(name)
        paths = [meta.get(key) for key in ("json_file", "image_root", "dirname")]
        missing = [p for p in paths if p and not os.path.exists(p)]
        if missing:
            raise DatasetNotFoundError(
                f"data set '{name}' is missing {', '.join(missing)}. detectron2's built-in data sets are "
                f"read from $DETECTRON2_DATASETS (now '{root}'); set it to the folder that holds coco/ or "
                "VOC2007/ and VOC2012/ (https://detectron2.readthedocs.io/en/latest/tutorials/builtin_datasets.html)"
            )


class COCOEvaluatorWithSubmission(COCOEvaluator):
    """COCOEvaluator that, for a split without annotations (COCO test-dev), says where the
    results file is and that AP comes from the evaluation server."""

    def evaluate(self, img_ids=None):
        results = super().evaluate(img_ids)
        if not self._do_evaluation and comm.is_main_process():
            path = os.path.join(self._output_dir, "coco_instances_results.json") if self._output_dir else None
            logger.warning(
                "%s has no annotations, so no AP is computed here. Detections: %s. For test-dev AP, zip this "
                "file (named detections_test-dev2017_<method>_results.json) and submit it to the COCO evaluation "
                "server (https://cocodataset.org/#upload).",
                self._metadata.name,
                path or "not written (no output folder)",
            )
        return results


def build_evaluator(cfg: CfgNode, dataset_name: str, output_folder: Optional[str] = None):
    """COCO evaluation for COCO-format data sets (boxes, and masks when the model predicts
    them), VOC evaluation for VOC ones; SemSegEvaluator for semantic-segmentation models."""
    output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
    kind = MetadataCatalog.get(dataset_name).get("evaluator_type")
    if is_semantic_segmentation(cfg) or kind == "sem_seg":
        return build_sem_seg_evaluator(dataset_name, output_folder)
    if kind == "coco":
        return COCOEvaluatorWithSubmission(dataset_name, output_dir=output_folder)
    if kind == "pascal_voc":
        return PascalVOCDetectionEvaluator(dataset_name)
    raise NotImplementedError(f"no evaluator for data set '{dataset_name}' (evaluator_type={kind!r}); "
                              "register it with evaluator_type 'coco' or 'pascal_voc'")


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by SOLVER.OPTIMIZER ("SGD" or "AdamW") over detectron2's
    parameter groups (SOLVER.WEIGHT_DECAY*, BIAS_LR_FACTOR) with dcn_det's learning-rate
    factors (SOLVER.DCN_OFFSET_LR_FACTOR, SOLVER.PARAM_LR_FACTORS) and gradient clipping
    (SOLVER.CLIP_GRADIENTS): :func:`dcn_det.solver.build_optimizer`."""
    return build_optimizer_with_lr_factors(cfg, model)


class Trainer(DefaultTrainer):
    """detectron2's DefaultTrainer with evaluators chosen by :func:`build_evaluator` and the
    optimizer chosen by SOLVER.OPTIMIZER (:func:`build_optimizer`); semantic-segmentation
    models train with the DeepLab project's mapper and LR schedules (dcn_det.sem_seg_training)."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_train_loader(cls, cfg):
        if is_semantic_segmentation(cfg):
            return build_sem_seg_train_loader(cfg)
        return super().build_train_loader(cfg)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)
