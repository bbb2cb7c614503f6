"""Training / evaluation plumbing shared by tools/train_net.py, the demo and other projects:
config setup, evaluators chosen by data set, clear errors for missing data sets and weights,
atomic checkpoints, and multi-process training on CPUs as well as GPUs."""
import inspect
import logging
import os
import weakref
from typing import Any, Iterable, Optional

import torch
from torch.nn.parallel import DistributedDataParallel

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ._files import replace_atomically
from .config import add_dcn_config, check_cfg, use_dcn_builders
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


class WeightsNotFoundError(FileNotFoundError):
    """MODEL.WEIGHTS names a local file that does not exist."""


def check_weights(cfg: CfgNode, resume: bool = False) -> None:
    """Raise :class:`WeightsNotFoundError` when MODEL.WEIGHTS is a local path that does not
    exist and will be read: not when it is a URL (detectron2://, https://, ...), and not when
    ``resume`` finds a checkpoint in OUTPUT_DIR (which then replaces MODEL.WEIGHTS)."""
    weights = cfg.MODEL.WEIGHTS
    if not weights or "://" in weights or os.path.isfile(weights):
        return
    if resume and os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")):
        return
    raise WeightsNotFoundError(f"MODEL.WEIGHTS: no such file: {weights}")


def _atomic_write(path: str, write) -> None:
    """``write(f)`` on a binary file that replaces ``path`` atomically (dcn_det._files)."""

    def write_file(tmp: str) -> None:
        with open(tmp, "wb") as f:
            write(f)

    replace_atomically(path, write_file)


class AtomicCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer whose checkpoint files and ``last_checkpoint`` tag are written
    atomically (temporary file + rename), so a run killed while saving can still be resumed
    from the previous checkpoint. Local folders only (as OUTPUT_DIR is)."""

    def save(self, name: str, **kwargs: Any) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", path)
        _atomic_write(path, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        path = os.path.join(self.save_dir, "last_checkpoint")
        _atomic_write(path, lambda f: f.write(last_filename_basename.encode()))


def create_ddp_model(model: torch.nn.Module) -> torch.nn.Module:
    """Wrap ``model`` in DistributedDataParallel when more than one process trains.

    detectron2's create_ddp_model always passes ``device_ids=[local rank]``, which DDP
    rejects for a CPU model; here a CPU model gets no device ids (gloo reduces CPU
    tensors). Unused parameters are not searched for (DDP's default): a parameter that gets
    no gradient stops training with DDP's error instead of going silently untrained."""
    if comm.get_world_size() == 1:
        return model
    on_gpu = next(model.parameters()).device.type == "cuda"
    device_ids = [comm.get_local_rank()] if on_gpu else None
    # Buffers (BatchNorm statistics) stay per process, as in detectron2; PyTorch >= 2.14
    # names this forward_sync_buffers and deprecates broadcast_buffers.
    no_buffer_sync = {_DDP_BUFFER_SYNC_ARG: False}
    return DistributedDataParallel(model, device_ids=device_ids, **no_buffer_sync)


_DDP_BUFFER_SYNC_ARG = (
    "forward_sync_buffers"
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else "broadcast_buffers"
)


class Trainer(DefaultTrainer):
    """detectron2's DefaultTrainer with evaluators chosen by :func:`build_evaluator`, the
    optimizer chosen by SOLVER.OPTIMIZER (:func:`build_optimizer`), atomic checkpoints
    (:class:`AtomicCheckpointer`) and DDP that works on CPUs (:func:`create_ddp_model`);
    semantic-segmentation models train with the DeepLab project's mapper and LR schedules
    (dcn_det.sem_seg_training). The config is checked first (:func:`dcn_det.config.check_cfg`)."""

    def __init__(self, cfg: CfgNode):
        # DefaultTrainer.__init__'s steps, with our DDP wrapper and checkpointer (its own
        # constructs detectron2's, which cannot be swapped afterwards without rebuilding).
        check_cfg(cfg)
        TrainerBase.__init__(self)
        logger = logging.getLogger("detectron2")
        if not logger.isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

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
