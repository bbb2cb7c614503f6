"""Inference with the authors' released models (configs/Original/*.yaml): COCO test-dev at their
test scale (shorter side 600, longer at most 1000), RGB, the COCO evaluator (test-dev has no
annotations: it writes the results file to submit). No training data, optimizer or schedule:
these configs only evaluate (``lazyconfig_train_net.py --eval-only``) converted weights
(``train.init_checkpoint``, tools/convert_mxnet_model.py)."""
from detectron2.model_zoo import get_config

dataloader = get_config("common/data/coco.py").dataloader
del dataloader.train
dataloader.test.dataset.names = "coco_2017_test-dev"
dataloader.test.mapper.image_format = "RGB"
dataloader.test.mapper.augmentations[0].update(short_edge_length=600, max_size=1000)

train = get_config("common/train.py").train
