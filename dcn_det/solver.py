"""Optimizer parameter groups with per-parameter learning-rate factors.

Learning-rate rules belong to the optimizer, not to the model: instead of scaling weights
inside a module (which makes checkpoints depend on a config key), the factors become
detectron2-style parameter groups (``get_default_optimizer_params``: BIAS_LR_FACTOR,
WEIGHT_DECAY_NORM, WEIGHT_DECAY_BIAS), with

- SOLVER.DCN_OFFSET_LR_FACTOR for the offset / modulation-mask branches of deformable convs
  and deformable (PS-)RoI pooling (the DCNv1 paper's beta);
- SOLVER.PARAM_LR_FACTORS: [regex, lr_factor(, weight_decay_factor)] rules on parameter names;
- the deprecated MODEL.RFCN.HEAD_LR_FACTOR, read as the rule that reproduces it (below).

Why the deprecated key maps to (lr f, weight decay 1/f): the old R-FCN head computed
``g * conv(x; v)`` with ``g = sqrt(f)`` and trained v; its effective weight is ``w = g v``. The
gradient w.r.t. v is ``g dL/dw``, and the L2 term ``wd v`` on v is ``(wd/g) w``, so an SGD step
moves v by ``-lr (g dL/dw + (wd/g) w)`` and w by g times that: ``-lr f (dL/dw + (wd/f) w)``,
which is SGD on w with learning rate ``lr f`` and weight decay ``wd / f``. Momentum is linear,
so the equivalence holds step for step (tests/test_solver.py checks it numerically). Under
Adam the old key acted as a factor of about sqrt(f) instead; gradient clipping saw the
gradients of v.
"""
import logging
import re
from collections import abc
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from detectron2.config import CfgNode
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from fvcore.common.param_scheduler import ParamScheduler

logger = logging.getLogger(__name__)

# Submodules that compute offsets (and DCNv2 masks) inside dcn_det's and detectron2's
# deformable modules: DeformBottleneck / detectron2's DeformBottleneckBlock (conv2_offset),
# the *WithOffset convs and DeformPSRoIPool (conv_offset), DeformRoIPool (offset_fc, mask_fc).
OFFSET_BRANCHES = ("conv2_offset", "conv_offset", "offset_fc", "mask_fc")
# The R-FCN head's 1x1 convs that MODEL.RFCN.HEAD_LR_FACTOR used to scale.
RFCN_HEAD_PATTERN = r"(^|\.)roi_heads\.(conv_new|rfcn_cls|rfcn_bbox)\."

Rule = Tuple["re.Pattern[str]", float, float]


def _parse_rule(index: int, rule, name: str = "SOLVER.PARAM_LR_FACTORS") -> Rule:
    key = f"{name}[{index}]"
    # Any sequence but a string: a LazyConfig hands over OmegaConf's ListConfig.
    if isinstance(rule, (str, bytes)) or not isinstance(rule, abc.Sequence) or len(rule) not in (2, 3) or not isinstance(rule[0], str):
        raise ValueError(f"{key} must be [regex, lr_factor] or [regex, lr_factor, weight_decay_factor], got {rule!r}")
    try:
        pattern = re.compile(rule[0])
    except re.error as e:
        raise ValueError(f"{key}: {rule[0]!r} is not a regular expression ({e})") from None
    lr_factor, wd_factor = float(rule[1]), float(rule[2]) if len(rule) == 3 else 1.0
    if not lr_factor > 0 or not wd_factor >= 0:
        raise ValueError(f"{key}: lr_factor must be > 0 and weight_decay_factor >= 0, got {rule!r}")
    return pattern, lr_factor, wd_factor


def lr_factor_rules(cfg: CfgNode) -> List[Rule]:
    """SOLVER.PARAM_LR_FACTORS parsed (one clear error naming the entry), then the rule
    that replaces a deprecated MODEL.RFCN.HEAD_LR_FACTOR != 1 (with a warning)."""
    rules = [_parse_rule(i, rule) for i, rule in enumerate(cfg.SOLVER.get("PARAM_LR_FACTORS", []))]
    factor = cfg.MODEL.get("RFCN", {}).get("HEAD_LR_FACTOR", 1.0)
    if factor != 1.0:
        if not factor > 0:
            raise ValueError(f"MODEL.RFCN.HEAD_LR_FACTOR must be > 0, got {factor}")
        rule = [RFCN_HEAD_PATTERN, factor, 1.0 / factor]
        logger.warning(
            "MODEL.RFCN.HEAD_LR_FACTOR is deprecated and no longer changes the model; read as "
            "SOLVER.PARAM_LR_FACTORS entry %r (the same SGD updates; set that instead). Checkpoints trained "
            "with the old key hold these convs' weights and biases divided by sqrt(%g).",
            rule,
            factor,
        )
        rules.append(_parse_rule(len(rules), rule))
    return rules


def check_lr_factors(cfg: CfgNode) -> None:
    """Validate SOLVER.PARAM_LR_FACTORS, SOLVER.DCN_OFFSET_LR_FACTOR and the deprecated
    MODEL.RFCN.HEAD_LR_FACTOR without a model (ValueError naming the key), e.g. before
    training starts."""
    lr_factor_rules(cfg)
    offset_factor = float(cfg.SOLVER.get("DCN_OFFSET_LR_FACTOR", 1.0))
    if not offset_factor > 0:
        raise ValueError(f"SOLVER.DCN_OFFSET_LR_FACTOR must be > 0, got {offset_factor}")


def offset_branch_parameter_names(model: torch.nn.Module) -> set:
    """Full names of the parameters of the offset / mask branches of deformable layers."""
    names = set()
    for module_name, module in model.named_modules():
        for branch in OFFSET_BRANCHES:
            child = getattr(module, branch, None)
            if isinstance(child, torch.nn.Module):
                prefix = f"{module_name}.{branch}." if module_name else f"{branch}."
                names.update(prefix + n for n, _ in child.named_parameters())
    return names


def parameter_factors(cfg: CfgNode, model: torch.nn.Module) -> Callable[[str], Tuple[float, float]]:
    """name -> (lr factor, weight-decay factor): the first matching SOLVER.PARAM_LR_FACTORS
    rule (else 1, 1), times SOLVER.DCN_OFFSET_LR_FACTOR for offset / mask branches."""
    check_lr_factors(cfg)
    return _factors(model, lr_factor_rules(cfg), float(cfg.SOLVER.get("DCN_OFFSET_LR_FACTOR", 1.0)))


def _factors(model: torch.nn.Module, rules: List[Rule], offset_factor: float) -> Callable[[str], Tuple[float, float]]:
    offsets = offset_branch_parameter_names(model)

    def factors(name: str) -> Tuple[float, float]:
        name = name.lstrip(".")  # detectron2 names a root module's parameter ".weight"
        lr, wd = next(((lr, wd) for pattern, lr, wd in rules if pattern.search(name)), (1.0, 1.0))
        return (lr * offset_factor if name in offsets else lr), wd

    return factors


def optimizer_param_groups(cfg: CfgNode, model: torch.nn.Module) -> List[Dict]:
    """detectron2's default parameter groups (SOLVER.BASE_LR, WEIGHT_DECAY, WEIGHT_DECAY_NORM,
    BIAS_LR_FACTOR, WEIGHT_DECAY_BIAS) with the factors of :func:`parameter_factors`."""
    return _param_groups(
        model,
        parameter_factors(cfg, model),
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )


def dcn_optimizer_params(
    model: torch.nn.Module,
    *,
    base_lr: Optional[float] = None,
    weight_decay: Optional[float] = None,
    weight_decay_norm: Optional[float] = None,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
    dcn_offset_lr_factor: float = 1.0,
    param_lr_factors: Sequence = (),
) -> List[Dict]:
    """The LazyConfig form of the YAML optimizer's parameter groups: detectron2's
    ``get_default_optimizer_params`` arguments (None = the optimizer's own lr / weight decay)
    plus ``dcn_offset_lr_factor`` (SOLVER.DCN_OFFSET_LR_FACTOR) and ``param_lr_factors``
    (SOLVER.PARAM_LR_FACTORS: [regex, lr_factor(, weight_decay_factor)] rules). Used as
    ``optimizer.params = L(dcn_optimizer_params)(...)`` (configs/common/optim.py); detectron2's
    ``lazyconfig_train_net.py`` sets ``optimizer.params.model``."""
    rules = [_parse_rule(i, rule, "param_lr_factors") for i, rule in enumerate(param_lr_factors)]
    if not float(dcn_offset_lr_factor) > 0:
        raise ValueError(f"dcn_offset_lr_factor must be > 0, got {dcn_offset_lr_factor}")
    return _param_groups(
        model,
        _factors(model, rules, float(dcn_offset_lr_factor)),
        base_lr=base_lr,
        weight_decay=weight_decay,
        weight_decay_norm=weight_decay_norm,
        bias_lr_factor=bias_lr_factor,
        weight_decay_bias=weight_decay_bias,
    )


def _param_groups(model: torch.nn.Module, factors: Callable[[str], Tuple[float, float]], **defaults) -> List[Dict]:
    groups = get_default_optimizer_params(model, lr_factor_func=lambda name: factors(name)[0], **defaults)
    # detectron2 has no weight-decay factor: split its (merged) groups by ours. A group
    # without "weight_decay" takes the optimizer's; a factor != 1 then needs the value.
    wd_factor = {id(p): factors(name)[1] for name, p in model.named_parameters()}
    split = []
    for group in groups:
        by_factor: Dict[float, List] = {}
        for p in group["params"]:
            by_factor.setdefault(wd_factor.get(id(p), 1.0), []).append(p)
        for factor, params in by_factor.items():
            new = {**group, "params": params}
            if factor != 1.0:
                if "weight_decay" not in group:
                    raise ValueError("a weight_decay_factor != 1 in param_lr_factors needs weight_decay set in the params")
                new["weight_decay"] = group["weight_decay"] * factor
            split.append(new)
    return split


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SOLVER.OPTIMIZER "SGD" (SOLVER.MOMENTUM, NESTEROV: detectron2's) or "AdamW" (betas
    (0.9, 0.999)) over :func:`optimizer_param_groups`, with detectron2's gradient clipping
    (SOLVER.CLIP_GRADIENTS)."""
    name = cfg.SOLVER.get("OPTIMIZER", "SGD")
    if name not in ("SGD", "AdamW"):
        raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD' or 'AdamW', not {name!r}")
    params = optimizer_param_groups(cfg, model)
    if name == "SGD":
        return maybe_add_gradient_clipping(cfg, torch.optim.SGD)(
            params,
            lr=cfg.SOLVER.BASE_LR,
            momentum=cfg.SOLVER.MOMENTUM,
            nesterov=cfg.SOLVER.NESTEROV,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        )
    return maybe_add_gradient_clipping(cfg, torch.optim.AdamW)(params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)


class WarmupPolyParamScheduler(ParamScheduler):
    """SOLVER.LR_SCHEDULER_NAME "WarmupPolyLR" (the DeepLab project's scheduler) as an fvcore
    ParamScheduler, the LazyConfig ``lr_multiplier``: the warm-up factor (linear from
    ``warmup_factor`` to 1 over ``warmup_iters``, or constant) times ``(1 - iter / max_iter) **
    power``, held at ``constant_ending`` once it would fall below it (after warm-up).
    detectron2's WarmupParamScheduler interpolates towards the schedule instead of
    multiplying, which differs during warm-up when the schedule is not flat there."""

    def __init__(self, max_iter: int, warmup_iters: int = 1000, warmup_factor: float = 0.001,
                 warmup_method: str = "linear", power: float = 0.9, constant_ending: float = 0.0):
        if warmup_method not in ("linear", "constant"):
            raise ValueError(f'warmup_method must be "linear" or "constant", got {warmup_method!r}')
        if not max_iter > 0:
            raise ValueError(f"max_iter must be > 0, got {max_iter}")
        self.max_iter, self.warmup_iters, self.warmup_factor = max_iter, warmup_iters, warmup_factor
        self.warmup_method, self.power, self.constant_ending = warmup_method, power, constant_ending

    def __call__(self, where: float) -> float:
        iteration = where * self.max_iter
        factor = 1.0
        if iteration < self.warmup_iters:
            if self.warmup_method == "constant":
                factor = self.warmup_factor
            else:
                alpha = iteration / self.warmup_iters
                factor = self.warmup_factor * (1 - alpha) + alpha
        poly = (1.0 - where) ** self.power
        if self.constant_ending > 0 and factor == 1.0 and poly < self.constant_ending:
            return self.constant_ending
        return factor * poly
