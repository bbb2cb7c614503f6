"""The demo's data (configs/Demo/*.yaml): dcn_det's generated shapes data set (dcn_det.data.shapes,
128x128 images drawn on first use, no download), no flips (mirrored digits are not digits), the
COCO evaluator. ``dataloader.test`` is the in-range validation split; ``dataloader.test_scaled``
the objects scaled beyond the training range (the YAML's second DATASETS.TEST entry):
detectron2's ``lazyconfig_train_net.py`` evaluates ``dataloader.test``, so pass
``dataloader.test.dataset.names=shapes_dcn_val_scaled`` (and the evaluator's) for the other.

Loading this file registers dcn_det's components and the ``shapes_dcn_*`` data sets
(``dcn_det.register()``, idempotent): detectron2 looks data sets up by name, and every process
that loads the config (each worker of a multi-process run) needs them."""
import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config

import dcn_det

dcn_det.register()

dataloader = get_config("common/data/coco.py").dataloader
dataloader.train.dataset.names = "shapes_dcn_train"
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=(128,), sample_style="choice", max_size=128),
]
dataloader.train.mapper.use_instance_mask = False
dataloader.train.total_batch_size = 16
dataloader.train.num_workers = 0  # loading is ~3% of an iteration; a worker would only compete for the cores
dataloader.test.dataset.names = "shapes_dcn_val"
dataloader.test.mapper.augmentations[0].short_edge_length = 128
dataloader.test.mapper.augmentations[0].max_size = 128
dataloader.test.num_workers = 0
dataloader.test_scaled = dataloader.test.copy()
dataloader.test_scaled.dataset.names = "shapes_dcn_val_scaled"
