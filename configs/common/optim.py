"""detectron2's optimizers (common/optim.py) over dcn_det's parameter groups: detectron2's
``get_default_optimizer_params`` plus the learning-rate factors of the YAML keys
SOLVER.DCN_OFFSET_LR_FACTOR (``params.dcn_offset_lr_factor``) and SOLVER.PARAM_LR_FACTORS
(``params.param_lr_factors``). ``params.model`` is set by the training script."""
import torch
from detectron2.config import LazyCall as L

from dcn_det.solver import dcn_optimizer_params

SGD = L(torch.optim.SGD)(
    params=L(dcn_optimizer_params)(
        base_lr="${..lr}",
        weight_decay="${..weight_decay}",
        weight_decay_norm=0.0,
        dcn_offset_lr_factor=1.0,
        param_lr_factors=[],
    ),
    lr=0.02,
    momentum=0.9,
    weight_decay=1e-4,
)

AdamW = L(torch.optim.AdamW)(
    params=L(dcn_optimizer_params)(
        base_lr="${..lr}",
        weight_decay="${..weight_decay}",
        weight_decay_norm=0.0,
        dcn_offset_lr_factor=1.0,
        param_lr_factors=[],
    ),
    lr=1e-4,
    betas=(0.9, 0.999),
    weight_decay=0.1,
)
