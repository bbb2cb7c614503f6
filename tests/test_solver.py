"""dcn_det.solver: learning-rate factors as optimizer parameter groups, and the deprecated
MODEL.RFCN.HEAD_LR_FACTOR read as the group that reproduces its SGD updates."""
import copy
import logging
from pathlib import Path

import pytest
import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_roi_heads
from detectron2.solver import build_optimizer as detectron2_build_optimizer
from detectron2.structures import Boxes
from torch import nn
from torch.nn.utils import parametrize

from dcn_det.engine import build_cfg
from dcn_det.solver import build_optimizer, check_lr_factors, optimizer_param_groups

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
HEAD_CONVS = ("conv_new", "rfcn_cls", "rfcn_bbox")


def _per_parameter(model, groups):
    """{parameter name: (lr, weight_decay)} of optimizer groups."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


def _small_deformable_model():
    from detectron2.modeling.backbone.resnet import BottleneckBlock

    from dcn_det.layers import DeformRoIPool
    from dcn_det.modeling import DeformBottleneck

    model = nn.Module()
    model.block = DeformBottleneck(BottleneckBlock(8, 8, bottleneck_channels=4, norm="BN"), modulated=True)
    model.pool = DeformRoIPool(8, 3, spatial_scale=1.0, offset_fc_dims=(16,))
    model.head = nn.Linear(8, 2)
    return model


def test_without_factors_the_groups_are_detectron2s():
    model = _small_deformable_model()
    cfg = build_cfg("", ["SOLVER.WEIGHT_DECAY", "0.01", "SOLVER.BIAS_LR_FACTOR", "2.0", "SOLVER.WEIGHT_DECAY_BIAS", "0.5"])
    ours = _per_parameter(model, build_optimizer(cfg, model).param_groups)
    theirs = _per_parameter(model, detectron2_build_optimizer(cfg, model).param_groups)
    assert ours == theirs
    assert len(set(ours.values())) == 3  # weights, biases, norms: the test compares something


def test_dcn_offset_lr_factor_scales_exactly_the_offset_and_mask_branches():
    model = _small_deformable_model()
    cfg = build_cfg("", ["SOLVER.BASE_LR", "0.1", "SOLVER.DCN_OFFSET_LR_FACTOR", "0.01", "SOLVER.BIAS_LR_FACTOR", "1.0"])
    lrs = {name: lr for name, (lr, _) in _per_parameter(model, optimizer_param_groups(cfg, model)).items()}
    branches = ("block.conv2_offset.", "pool.offset_fc.", "pool.mask_fc.")
    slow = {n for n in lrs if n.startswith(branches)}
    assert {"block.conv2_offset.weight", "block.conv2_offset.bias", "pool.offset_fc.0.weight"} <= slow
    assert all(lrs[n] == pytest.approx(0.001) for n in slow)
    assert all(lrs[n] == pytest.approx(0.1) for n in set(lrs) - slow)
    assert "block.conv2.weight" in set(lrs) - slow  # the deformable conv's own weight keeps the base rate


def test_param_lr_factors_first_matching_rule_wins_and_scales_weight_decay():
    model = _small_deformable_model()
    cfg = build_cfg("", ["SOLVER.BASE_LR", "0.1", "SOLVER.WEIGHT_DECAY", "0.001", "SOLVER.WEIGHT_DECAY_BIAS", "0.001"])
    cfg.SOLVER.PARAM_LR_FACTORS = [[r"^head\.weight", 10.0, 0.5], [r"^head\.", 3.0]]
    hyper = _per_parameter(model, optimizer_param_groups(cfg, model))
    assert hyper["head.weight"] == pytest.approx((1.0, 0.0005))
    assert hyper["head.bias"] == pytest.approx((0.3, 0.001))
    assert hyper["block.conv1.weight"] == pytest.approx((0.1, 0.001))


@pytest.mark.parametrize(
    "rule, message",
    [("not a list", r"SOLVER.PARAM_LR_FACTORS\[0\] must be"), (["(", 2.0], r"SOLVER.PARAM_LR_FACTORS\[0\]: '\(' is not"),
     (["head", 0.0], r"SOLVER.PARAM_LR_FACTORS\[0\]: lr_factor must be > 0")],
)
def test_bad_param_lr_factors_name_the_entry(rule, message):
    cfg = build_cfg("")
    cfg.SOLVER.PARAM_LR_FACTORS = [rule]
    with pytest.raises(ValueError, match=message):
        build_optimizer(cfg, _small_deformable_model())


def test_bad_dcn_offset_lr_factor_names_the_key():
    cfg = build_cfg("", ["SOLVER.DCN_OFFSET_LR_FACTOR", "0.0"])
    with pytest.raises(ValueError, match="SOLVER.DCN_OFFSET_LR_FACTOR must be > 0"):
        build_optimizer(cfg, _small_deformable_model())
    with pytest.raises(ValueError, match="SOLVER.DCN_OFFSET_LR_FACTOR must be > 0"):
        check_lr_factors(cfg)  # also without a model


def test_check_lr_factors_accepts_the_configs_of_the_repo():
    for config in sorted(CONFIGS.rglob("*.yaml")):
        check_lr_factors(build_cfg(str(config)))


# --- MODEL.RFCN.HEAD_LR_FACTOR (deprecated) vs the old reparametrisation -----------------------


class _Gain(nn.Module):
    """The old R-FCN head's reparametrisation: the effective tensor is gain * the trained one."""

    def __init__(self, gain):
        super().__init__()
        self.gain = gain

    def forward(self, trained):
        return self.gain * trained

    def right_inverse(self, effective):
        return effective / self.gain


def _rfcn_model(*opts):
    """A small deformable R-FCN head (the demo's settings) inside a module, so parameter
    names start with "roi_heads." as in a detector."""
    cfg = build_cfg(str(CONFIGS / "Demo" / "rfcn_dcnv2.yaml"), ["MODEL.RFCN.HIDDEN_DIM", "16", "SOLVER.BASE_LR", "0.01", *opts])
    torch.manual_seed(0)
    model = nn.Module()
    model.roi_heads = build_roi_heads(cfg, {"res5": ShapeSpec(channels=32, stride=16)})
    return cfg, model.double()


def _sgd_steps(model, optimizer, steps=5):
    """Run SGD steps on a fixed feature map and boxes; returns the head's outputs at each step."""
    g = torch.Generator().manual_seed(1)
    feature = torch.randn(1, 32, 8, 10, generator=g, dtype=torch.float64)
    boxes = [Boxes(torch.tensor([[10.0, 12.0, 90.0, 100.0], [40.0, 8.0, 150.0, 70.0]], dtype=torch.float64))]
    target = torch.randn(2, 8, generator=g, dtype=torch.float64)
    outputs = []
    for _ in range(steps):
        logits, deltas = model.roi_heads.predict(feature, boxes)
        outputs.append(logits.detach().clone())
        loss = (logits - target).square().sum() + deltas.square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return outputs


def _old_reparametrised(model, factor):
    """The model as the old MODEL.RFCN.HEAD_LR_FACTOR built it: same function, each head
    conv's weight and bias trained as (effective / sqrt(factor))."""
    old = copy.deepcopy(model)
    for name in HEAD_CONVS:
        conv = getattr(old.roi_heads, name)
        for tensor in ("weight", "bias"):
            parametrize.register_parametrization(conv, tensor, _Gain(factor**0.5))
    return old


def _effective_head(model):
    return [getattr(model.roi_heads, n).weight.detach().clone() for n in HEAD_CONVS] + [
        getattr(model.roi_heads, n).bias.detach().clone() for n in HEAD_CONVS
    ]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_demo_rfcn_lr_factor_groups_give_the_old_reparametrisations_sgd_updates(momentum):
    cfg, model = _rfcn_model("SOLVER.MOMENTUM", str(momentum), "SOLVER.WEIGHT_DECAY", "0.05", "SOLVER.WEIGHT_DECAY_BIAS", "0.05")
    old = _old_reparametrised(model, 50.0)
    torch.testing.assert_close(_effective_head(old), _effective_head(model))  # same start
    new_outputs = _sgd_steps(model, build_optimizer(cfg, model))
    # The old way: plain SGD, one learning rate and weight decay for everything.
    plain = torch.optim.SGD(old.parameters(), lr=0.01, momentum=momentum, weight_decay=0.05)
    old_outputs = _sgd_steps(old, plain)
    torch.testing.assert_close(new_outputs, old_outputs, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(_effective_head(model), _effective_head(old), rtol=1e-9, atol=1e-12)
    moved = [(a - b).abs().max() for a, b in zip(_effective_head(model), _effective_head(_rfcn_model()[1]))]
    assert min(moved) > 1e-4  # the steps did move every head tensor


def test_an_lr_factor_alone_does_not_reproduce_the_old_weight_decay():
    cfg, model = _rfcn_model("SOLVER.WEIGHT_DECAY", "0.05", "SOLVER.WEIGHT_DECAY_BIAS", "0.05")
    cfg.SOLVER.PARAM_LR_FACTORS = [[r"(^|\.)roi_heads\.(conv_new|rfcn_cls|rfcn_bbox)\.", 50.0]]
    old = _old_reparametrised(model, 50.0)
    _sgd_steps(model, build_optimizer(cfg, model))
    _sgd_steps(old, torch.optim.SGD(old.parameters(), lr=0.01, momentum=0.9, weight_decay=0.05))
    differences = [(a - b).abs().max() for a, b in zip(_effective_head(model), _effective_head(old))]
    assert max(differences) > 1e-6


def test_deprecated_head_lr_factor_gives_the_same_groups_with_a_warning(caplog):
    _, model = _rfcn_model()
    new_cfg, _ = _rfcn_model()
    old_cfg, _ = _rfcn_model("SOLVER.PARAM_LR_FACTORS", "[]", "MODEL.RFCN.HEAD_LR_FACTOR", "50.0")
    with caplog.at_level(logging.WARNING, logger="dcn_det.solver"):
        old_groups = _per_parameter(model, optimizer_param_groups(old_cfg, model))
    assert old_groups == _per_parameter(model, optimizer_param_groups(new_cfg, model))
    assert old_groups["roi_heads.rfcn_cls.weight"] == pytest.approx((0.5, 1e-4 / 50))
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "MODEL.RFCN.HEAD_LR_FACTOR is deprecated" in warning and "SOLVER.PARAM_LR_FACTORS" in warning


def test_deprecated_head_lr_factor_is_validated():
    cfg, model = _rfcn_model("MODEL.RFCN.HEAD_LR_FACTOR", "0.0")
    with pytest.raises(ValueError, match="MODEL.RFCN.HEAD_LR_FACTOR must be > 0"):
        build_optimizer(cfg, model)
