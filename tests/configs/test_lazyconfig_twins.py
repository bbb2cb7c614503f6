"""Every YAML model config under configs/ has a LazyConfig twin (<name>.py beside it) that builds
the same model: the same module tree (names and classes), the same parameters and buffers
(names, shapes), and, with the YAML model's weights (randomly perturbed so that zero-initialised
offset branches deform), the same output of every module on an image in eval mode; the same
optimizer settings for every parameter (dcn_det's LR factors included), the same LR schedule,
iterations, batch size and data sets. The YAML side is the reference: dcn_det.engine.build_cfg,
detectron2's build_model and dcn_det.engine's optimizer / scheduler builders."""
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.modeling import build_model
from detectron2.solver import LRMultiplier
from detectron2.utils.events import EventStorage
from omegaconf import ListConfig

from dcn_det.engine import build_cfg, build_lr_scheduler, build_optimizer
from dcn_det.sem_seg_training import SemSegDatasetMapper, is_semantic_segmentation

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
YAMLS = sorted(p for p in CONFIG_ROOT.rglob("*.yaml") if not p.name.startswith("Base-"))


def _id(path):
    return str(path.relative_to(CONFIG_ROOT))


def _twin(yaml_path):
    return yaml_path.with_suffix(".py")


def _models(yaml_path):
    cfg = build_cfg(str(yaml_path), ["MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    reference = build_model(cfg)
    lazy = LazyConfig.load(str(_twin(yaml_path)))
    twin = instantiate(lazy.model)
    return cfg, reference, lazy, twin


def _tensors(value):
    """The tensors inside a module's output (tensors, tuples, lists, dicts, Instances, Boxes)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for k in sorted(value, key=str) for t in _tensors(value[k])]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if hasattr(value, "get_fields"):  # Instances
        return [t for k, v in sorted(value.get_fields().items()) for t in _tensors(v)]
    if hasattr(value, "tensor"):  # Boxes
        return [value.tensor]
    return []


def _record(model):
    outputs, handles = {}, []
    for name, module in model.named_modules():
        def hook(_module, _inputs, output, name=name):
            outputs.setdefault(name, []).append([t.detach().clone() for t in _tensors(output)])

        handles.append(module.register_forward_hook(hook))
    return outputs, handles


def _image_size(cfg):
    # DeepLab's ASPP pools over the training crop's extent: test images must be at least that.
    if is_semantic_segmentation(cfg) and cfg.INPUT.CROP.ENABLED:
        return tuple(cfg.INPUT.CROP.SIZE)
    return 160, 224


def _image(cfg):
    height, width = _image_size(cfg)
    generator = torch.Generator().manual_seed(1)
    image = torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8).float()
    return [{"image": image, "height": height, "width": width}]


def _training_batch(cfg):
    """Two images with annotations of every kind the model trains on (boxes, classes, masks,
    semantic labels)."""
    from detectron2.structures import BitMasks, Boxes, Instances

    batch = _image(cfg) * 2
    size = _image_size(cfg)
    boxes = torch.tensor([[20.0, 30.0, 120.0, 140.0], [100.0, 40.0, 200.0, 150.0], [60.0, 10.0, 90.0, 50.0]])
    masks = torch.zeros(len(boxes), *size, dtype=torch.bool)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
        mask[y1:y2, x1:x2] = True
    generator = torch.Generator().manual_seed(4)
    for item in batch:
        item = item.update(
            instances=Instances(size, gt_boxes=Boxes(boxes), gt_classes=torch.tensor([1, 0, 1]), gt_masks=BitMasks(masks)),
            sem_seg=torch.randint(0, cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, size, generator=generator),
        )
    return batch


@pytest.mark.parametrize("yaml_path", YAMLS, ids=_id)
def test_every_model_config_has_a_lazyconfig_twin(yaml_path):
    assert _twin(yaml_path).is_file(), f"{_id(yaml_path)} has no LazyConfig twin {_twin(yaml_path).name}"


TWINS = [p for p in YAMLS if _twin(p).is_file()]


@pytest.mark.parametrize("yaml_path", TWINS, ids=_id)
def test_twin_builds_the_yaml_model_and_computes_the_same(yaml_path):
    cfg, reference, _, twin = _models(yaml_path)
    kinds = {n: type(m).__name__ for n, m in reference.named_modules()}
    assert {n: type(m).__name__ for n, m in twin.named_modules()} == kinds
    shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in twin.state_dict().items()} == shapes

    initial = {k: v.clone() for k, v in reference.state_dict().items()}
    torch.manual_seed(2)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    twin.load_state_dict(reference.state_dict())
    reference.eval()
    twin.eval()
    recorded = []
    for model in (reference, twin):
        outputs, handles = _record(model)
        with torch.no_grad():
            model(_image(cfg))
        for h in handles:
            h.remove()
        recorded.append(outputs)
    want, got = recorded
    assert sorted(got) == sorted(want), "the twin runs other modules"
    compared = 0
    for name in want:
        assert len(got[name]) == len(want[name]), f"{name!r} ran {len(got[name])} times, not {len(want[name])}"
        for call, (a, b) in enumerate(zip(want[name], got[name])):
            assert [t.shape for t in b] == [t.shape for t in a], f"{name!r} call {call}: output shapes differ"
            for x, y in zip(a, b):
                torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-5, msg=lambda m: f"{name!r} call {call}: {m}")
                compared += x.numel()
    assert compared > 0

    if not cfg.DATASETS.TRAIN:
        return  # an inference-only config (the authors' released models): nothing trains with it

    # Training: the same losses from the same random sampling (anchors, RoIs, OHEM), so that
    # the training-only settings (sample sizes, fractions, matchers, loss types) match too. From
    # the initial weights: perturbed ones can send a deep unnormalised net's RPN to Inf, which
    # detectron2 refuses in training.
    reference.load_state_dict(initial)
    twin.load_state_dict(initial)
    reference.train()
    twin.train()
    losses = []
    for model in (reference, twin):
        torch.manual_seed(3)
        with EventStorage():
            losses.append({k: v.detach() for k, v in model(_training_batch(cfg)).items()})
    assert sorted(losses[1]) == sorted(losses[0])
    for key, value in losses[0].items():
        torch.testing.assert_close(losses[1][key], value, rtol=1e-5, atol=1e-6, msg=lambda m: f"training loss {key}: {m}")


def _settings(optimizer, model):
    by_param = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            by_param[id(p)] = {k: v for k, v in group.items() if k != "params"}
    return type(optimizer).__name__, {n: by_param.get(id(p)) for n, p in model.named_parameters()}


def _lrs(scheduler, iterations):
    values = []
    for it in iterations:
        scheduler.last_epoch = it
        values.append(scheduler.get_lr())
    return values


def _test_names(lazy):
    """The test sets, one loader each: detectron2's LazyConfig evaluates ``dataloader.test``;
    further test sets are ``dataloader.test_<what>`` loaders, in the YAML's order."""
    names = ()
    for key in ["test"] + [k for k in lazy.dataloader if k.startswith("test_")]:
        value = lazy.dataloader[key].dataset.names
        names += tuple(value) if not isinstance(value, str) else (value,)
    return names


@pytest.mark.parametrize("yaml_path", TWINS, ids=_id)
def test_twin_trains_as_the_yaml_config(yaml_path):
    cfg, reference, lazy, twin = _models(yaml_path)
    assert _test_names(lazy) == tuple(cfg.DATASETS.TEST)
    if not cfg.DATASETS.TRAIN:
        # An inference-only config (the authors' released models): nothing to train with.
        assert "train" not in lazy.dataloader and "optimizer" not in lazy and "lr_multiplier" not in lazy
        return
    optimizer = build_optimizer(cfg, reference)
    lazy.optimizer.params.model = twin
    twin_optimizer = instantiate(lazy.optimizer)
    assert _settings(twin_optimizer, twin) == _settings(optimizer, reference)

    max_iter = cfg.SOLVER.MAX_ITER
    assert lazy.train.max_iter == max_iter
    scheduler = build_lr_scheduler(cfg, optimizer)
    twin_scheduler = LRMultiplier(twin_optimizer, instantiate(lazy.lr_multiplier), max_iter)
    iterations = sorted({0, 1, cfg.SOLVER.WARMUP_ITERS - 1, cfg.SOLVER.WARMUP_ITERS, max_iter - 1}
                        | {s + d for s in cfg.SOLVER.STEPS for d in (-1, 0, 1)}
                        | set(range(0, max_iter, max(1, max_iter // 50))))
    iterations = [i for i in iterations if 0 <= i < max_iter]
    for it, a, b in zip(iterations, _lrs(scheduler, iterations), _lrs(twin_scheduler, iterations)):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-15), f"learning rates differ at iteration {it}"

    train = lazy.dataloader.train
    assert train.total_batch_size == cfg.SOLVER.IMS_PER_BATCH
    names = train.dataset.names
    assert (tuple(names) if not isinstance(names, str) else (names,)) == tuple(cfg.DATASETS.TRAIN)


def _plain(value):
    from detectron2.data.transforms import Augmentation

    if isinstance(value, (list, tuple, ListConfig)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Augmentation):  # nested, e.g. the crop inside RandomCrop_CategoryAreaConstraint
        return _augmentation(value)
    return value


def _augmentation(aug):
    """Class and arguments of a detectron2 augmentation (OmegaConf turns tuples into lists)."""
    args = {k: _plain(v) for k, v in vars(aug).items() if not k.startswith("_")}
    sizes = args.get("short_edge_length")
    if isinstance(sizes, tuple) and len(set(sizes)) == 1:
        # One size: "range" (s, s) and "choice" (s,) resize alike (detectron2's YAML and LazyConfig
        # spell the test-time resize these two ways).
        args.update(short_edge_length=sizes[:1], is_range=None, sample_style=None)
    return type(aug).__name__, args


def _mapper_settings(mapper):
    from detectron2.data import DatasetMapper

    settings = {
        "class": type(mapper).__name__,
        "augmentations": [_augmentation(a) for a in mapper.augmentations.augs],
        "image_format": mapper.image_format,
    }
    if isinstance(mapper, DatasetMapper) and mapper.is_train:  # at test time DatasetMapper drops the annotations
        settings.update(
            use_instance_mask=mapper.use_instance_mask,
            instance_mask_format=mapper.instance_mask_format,
            use_keypoint=mapper.use_keypoint,
        )
    return settings


@pytest.mark.parametrize("yaml_path", TWINS, ids=_id)
def test_twin_reads_images_as_the_yaml_config(yaml_path):
    """The same resizing, flips and annotations per image, in training and at test time."""
    from detectron2.data import DatasetMapper

    cfg = build_cfg(str(yaml_path), ["MODEL.DEVICE", "cpu"])
    lazy = LazyConfig.load(str(_twin(yaml_path)))
    for is_train, key in ((True, "train"), (False, "test")):
        if is_train and not cfg.DATASETS.TRAIN:  # inference-only
            continue
        # What dcn_det's trainer (dcn_det.engine) reads images with.
        if is_train and is_semantic_segmentation(cfg):
            want = _mapper_settings(SemSegDatasetMapper(cfg))
        else:
            want = _mapper_settings(DatasetMapper(cfg, is_train))
        got = _mapper_settings(instantiate(lazy.dataloader[key].mapper))
        assert got == want, f"dataloader.{key}.mapper"
