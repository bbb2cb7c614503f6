"""Run a trained model on pictures: load a YAML or LazyConfig model with its weights (checked
against the model), resize and feed images as its test loader does, and turn the outputs into
COCO-format results (what ``tools/predict.py`` writes).

The detectron2 way (``DefaultPredictor``: one image, BGR/RGB as the config says, shortest
edge resized for the test), for both config systems, and strict about weights: a checkpoint
that does not fit the model is an error here, not a warning in a log.
"""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import MetadataCatalog
from detectron2.data import transforms as T


class PredictorError(ValueError):
    """A config, checkpoint or input that cannot be used; the message names it."""


def _checkpoint_state(path: str) -> Optional[Dict[str, torch.Tensor]]:
    """The model tensors of a ``.pth``/``.pt`` checkpoint (None for other formats, e.g.
    detectron2's ``.pkl``, whose names detectron2 maps on loading)."""
    if os.path.splitext(path)[1] not in (".pth", ".pt"):
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001  (any unreadable file is the same user error)
        raise PredictorError(f"--weights {path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise PredictorError(f"--weights {path}: expected a state dict or {{'model': state dict}}, got {type(data).__name__}")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def check_weights_fit(model: torch.nn.Module, path: str) -> None:
    """Raise :class:`PredictorError` unless ``path`` holds exactly the model's tensors with
    their shapes (a checkpoint of another config would otherwise load partly, with warnings,
    and predict garbage)."""
    state = _checkpoint_state(path)
    if state is None:
        return
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(v.shape)}"
              for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} model tensors missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} tensors the model does not have (e.g. {unexpected[0]})")
    if shapes:
        problems.append(f"{len(shapes)} shapes differ (e.g. {shapes[0]})")
    if problems:
        raise PredictorError(f"--weights {path} does not fit the config: " + "; ".join(problems))


@dataclass
class LoadedModel:
    model: torch.nn.Module
    metadata: object  # detectron2 Metadata of the first test data set (class names, colours)
    input_format: str  # "BGR" or "RGB"
    resize: Optional[T.Augmentation]  # the test loader's resize, None to feed images as they are
    device: str


def _yaml_model(config_file: str, opts: Sequence[str], device: str):
    from detectron2.modeling import build_model

    from .engine import build_cfg

    cfg = build_cfg(config_file, ["MODEL.DEVICE", device, *opts])
    model = build_model(cfg)
    name = cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else "__unused"
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST) if cfg.INPUT.MIN_SIZE_TEST else None
    return model, MetadataCatalog.get(name), cfg.INPUT.FORMAT, resize


def _lazy_model(config_file: str, opts: Sequence[str], device: str):
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.apply_overrides(LazyConfig.load(config_file), list(opts))
    if "model" not in cfg:
        raise PredictorError(f"--config-file {config_file}: a LazyConfig needs a `model` entry")
    model = instantiate(cfg.model).to(device)
    test = cfg.get("dataloader", {}).get("test", {})
    names = test.get("dataset", {}).get("names", "__unused")
    name = names if isinstance(names, str) else names[0]
    resize = None
    for aug in test.get("mapper", {}).get("augmentations", []):
        aug = instantiate(aug)
        if isinstance(aug, T.ResizeShortestEdge):
            resize = aug
    input_format = test.get("mapper", {}).get("image_format", getattr(model, "input_format", "BGR"))
    return model, MetadataCatalog.get(name), input_format, resize


def load_predictor(config_file: str, weights: str, device: str = "cpu", opts: Sequence[str] = ()) -> LoadedModel:
    """The model of ``config_file`` (``.yaml`` or LazyConfig ``.py``) with ``weights``, in
    eval mode; :class:`PredictorError` for a missing file or weights that do not fit."""
    for flag, path in (("--config-file", config_file), ("--weights", weights)):
        if not os.path.isfile(path):
            raise PredictorError(f"{flag}: no such file: {path}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PredictorError(f"--device {device}: CUDA is not available on this machine")
    from . import register

    register()  # our components and the shapes_dcn_* data sets, by name
    build = _lazy_model if config_file.endswith(".py") else _yaml_model
    try:
        model, metadata, input_format, resize = build(config_file, opts, device)
    except PredictorError:
        raise
    except Exception as e:  # noqa: BLE001  (a config that cannot build: one line, with the reason)
        raise PredictorError(f"--config-file {config_file}: cannot build the model ({type(e).__name__}: {e})") from e
    check_weights_fit(model, weights)
    DetectionCheckpointer(model).load(weights)
    return LoadedModel(model.eval(), metadata, input_format, resize, device)


def model_input(loaded: LoadedModel, image_bgr: np.ndarray) -> Dict:
    """detectron2's test input for one BGR image: channel order of the config, resized as
    the test loader does, with the original size to map the outputs back to."""
    height, width = image_bgr.shape[:2]
    image = image_bgr[:, :, ::-1] if loaded.input_format == "RGB" else image_bgr
    if loaded.resize is not None:
        image = loaded.resize.get_transform(image).apply_image(image)
    tensor = torch.as_tensor(np.ascontiguousarray(image).astype("float32").transpose(2, 0, 1))
    return {"image": tensor.to(loaded.device), "height": height, "width": width}


def coco_results(instances, file_name: str, metadata, frame: Optional[int] = None) -> List[Dict]:
    """COCO results rows ("bbox" as x, y, w, h; "segmentation" as RLE with masks) for one
    image's ``Instances``, named by ``file_name`` (and ``frame`` for a video). Category ids
    are the data set's own (``thing_dataset_id_to_contiguous_id`` reversed) when known."""
    to_dataset = {v: k for k, v in getattr(metadata, "thing_dataset_id_to_contiguous_id", {}).items()}
    names = getattr(metadata, "thing_classes", None) or []
    instances = instances.to("cpu")
    boxes = instances.pred_boxes.tensor.numpy() if instances.has("pred_boxes") else np.zeros((len(instances), 4))
    rles = None
    if instances.has("pred_masks"):
        import pycocotools.mask as mask_util

        masks = np.asfortranarray(instances.pred_masks.numpy().astype(np.uint8).transpose(1, 2, 0))
        rles = mask_util.encode(masks)
    rows = []
    for i in range(len(instances)):
        cls = int(instances.pred_classes[i])
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        row = {"file_name": file_name, "category_id": to_dataset.get(cls, cls),
               "category_name": names[cls] if cls < len(names) else str(cls),
               "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
               "score": round(float(instances.scores[i]), 5)}
        if frame is not None:
            row["frame"] = frame
        if rles is not None:
            rle = rles[i]
            row["segmentation"] = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
        rows.append(row)
    return rows


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def expand_inputs(patterns: Sequence[str]) -> List[str]:
    """Image and video files named by ``patterns`` (files, folders: their images and videos,
    sorted, not recursive; globs), in order, without repeats. :class:`PredictorError` for a
    pattern that names nothing."""
    import glob

    found: List[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            matches = sorted(os.path.join(pattern, f) for f in os.listdir(pattern)
                             if f.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS))
            if not matches:
                raise PredictorError(f"--input {pattern}: the folder holds no image or video files")
        elif os.path.isfile(pattern):
            matches = [pattern]
        else:
            matches = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
            if not matches:
                raise PredictorError(f"--input {pattern}: no such file, folder or matching files")
        found += [m for m in matches if m not in found]
    return found


def is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)
