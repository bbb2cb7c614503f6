# Twin of rfcn_coco.yaml: the authors' R-FCN R-101 (their rfcn_coco), plain PS-RoI pooling over
# whole pixels as theirs. Weights: tools/convert_mxnet_model.py, then
# lazyconfig_train_net.py --eval-only --config-file configs/Original/rfcn_coco.py train.init_checkpoint=<converted.pkl>
from ..common.models.original_rfcn import model
from ..common.original_test import dataloader, train

model.roi_heads.integer_bins = True  # MODEL.RFCN.INTEGER_BINS
