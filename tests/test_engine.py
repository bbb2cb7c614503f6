"""dcn_det.engine: build_cfg, check_datasets (clear errors for missing data sets) and
build_evaluator (evaluator chosen by the data set's evaluator_type)."""
import os
import uuid

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances, register_pascal_voc
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator

from dcn_det.engine import COCOEvaluatorWithSubmission, DatasetNotFoundError, Trainer, build_cfg, build_evaluator, check_datasets
from tests.modeling.synthetic import draw_images, write_coco, write_voc

CATEGORIES = [{"id": 1, "name": "box"}, {"id": 2, "name": "disc"}, {"id": 3, "name": "frame"}]


@pytest.fixture
def register():
    """register(kind, *args) -> a unique data set name, removed again after the test."""
    names = []

    def _register(kind, *args, **kwargs):
        name = f"test_engine_{kind}_{uuid.uuid4().hex[:8]}"
        {"coco": register_coco_instances, "voc": register_pascal_voc}[kind](name, *args, **kwargs)
        names.append(name)
        return name

    yield _register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    write_coco(str(root / "annotations.json"), str(root / "images"), draw_images(2), CATEGORIES)
    return str(root / "annotations.json"), str(root / "images")


# --- build_cfg --------------------------------------------------------------------------------


def test_build_cfg_has_dcn_keys_and_applies_overrides():
    cfg = build_cfg("", ["MODEL.DCN.POOL", "mdpool", "MODEL.RFCN.OHEM_ROIS", "64"])
    assert cfg.MODEL.DCN.POOL == "mdpool" and cfg.MODEL.RFCN.OHEM_ROIS == 64


def test_build_cfg_switches_detectron2_builders_for_deformable_stages_given_as_overrides():
    cfg = build_cfg("", ["MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone", "MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, True, True, True]"])
    assert cfg.MODEL.BACKBONE.NAME == "build_dcn_resnet_fpn_backbone"


def test_build_cfg_rejects_unknown_keys():
    with pytest.raises(AssertionError, match="MODEL.DCN.NO_SUCH_KEY"):  # yacs' way
        build_cfg("", ["MODEL.DCN.NO_SUCH_KEY", "1"])


# --- check_datasets ---------------------------------------------------------------------------


def test_check_datasets_accepts_a_data_set_whose_files_exist(register, coco_files):
    check_datasets([register("coco", {}, *coco_files)])


def test_check_datasets_names_the_missing_json_and_detectron2_datasets(register, tmp_path, coco_files):
    missing = str(tmp_path / "nowhere" / "instances_val2017.json")
    name = register("coco", {}, missing, coco_files[1])
    with pytest.raises(DatasetNotFoundError) as info:
        check_datasets([name])
    message = str(info.value)
    assert missing in message and name in message and "DETECTRON2_DATASETS" in message
    assert coco_files[1] not in message  # only what is missing


def test_check_datasets_names_a_missing_image_folder(register, tmp_path, coco_files):
    missing = str(tmp_path / "val2017")
    name = register("coco", {}, coco_files[0], missing)
    with pytest.raises(DatasetNotFoundError, match="DETECTRON2_DATASETS") as info:
        check_datasets([name])
    assert missing in str(info.value)


def test_check_datasets_names_a_missing_voc_directory(register, tmp_path):
    missing = str(tmp_path / "VOC2007")
    name = register("voc", missing, "test", 2007)
    with pytest.raises(DatasetNotFoundError, match="DETECTRON2_DATASETS") as info:
        check_datasets([name])
    assert missing in str(info.value)


def test_check_datasets_reports_the_value_of_detectron2_datasets(register, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "my_datasets"))
    name = register("coco", {}, str(tmp_path / "a.json"), str(tmp_path / "images"))
    with pytest.raises(DatasetNotFoundError, match="my_datasets"):
        check_datasets([name])


def test_check_datasets_raises_for_an_unregistered_name():
    with pytest.raises(DatasetNotFoundError, match="no_such_dataset_xyz"):
        check_datasets(["no_such_dataset_xyz"])


def test_check_datasets_checks_every_name(register, tmp_path, coco_files):
    good = register("coco", {}, *coco_files)
    with pytest.raises(DatasetNotFoundError, match="no_such_dataset_xyz"):
        check_datasets([good, "no_such_dataset_xyz"])


def test_builtin_coco_data_set_without_files_mentions_detectron2_datasets():
    """detectron2's built-in names are registered on import; their files are under
    $DETECTRON2_DATASETS (here: absent)."""
    json_file = MetadataCatalog.get("coco_2017_val").json_file
    if os.path.exists(json_file):
        pytest.skip("COCO is installed here")
    with pytest.raises(DatasetNotFoundError, match="DETECTRON2_DATASETS"):
        check_datasets(["coco_2017_val"])


def test_dataset_not_found_error_is_a_file_not_found_error():
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


# --- build_evaluator --------------------------------------------------------------------------


def test_build_evaluator_gives_a_coco_evaluator_with_submission_for_coco_data_sets(register, coco_files, tmp_path):
    name = register("coco", {}, *coco_files)
    assert MetadataCatalog.get(name).evaluator_type == "coco"
    evaluator = build_evaluator(build_cfg(), name, str(tmp_path / "eval"))
    assert isinstance(evaluator, COCOEvaluatorWithSubmission) and isinstance(evaluator, COCOEvaluator)
    assert evaluator._output_dir == str(tmp_path / "eval")


def test_build_evaluator_defaults_its_output_folder_to_output_dir_inference(register, coco_files, tmp_path):
    name = register("coco", {}, *coco_files)
    cfg = build_cfg("", ["OUTPUT_DIR", str(tmp_path)])
    assert build_evaluator(cfg, name)._output_dir == str(tmp_path / "inference" / name)


def test_build_evaluator_gives_a_voc_evaluator_for_voc_data_sets(register, tmp_path):
    write_voc(str(tmp_path / "VOC2007"), draw_images(2), ["aeroplane", "bicycle", "bird"], "test")
    name = register("voc", str(tmp_path / "VOC2007"), "test", 2007)
    MetadataCatalog.get(name).evaluator_type = "pascal_voc"
    assert isinstance(build_evaluator(build_cfg(), name), PascalVOCDetectionEvaluator)


@pytest.mark.parametrize("evaluator_type", ["lvis", None])
def test_build_evaluator_raises_not_implemented_for_other_evaluator_types(register, coco_files, evaluator_type):
    name = register("coco", {}, *coco_files)
    meta = MetadataCatalog.get(name)
    del meta.evaluator_type
    if evaluator_type:
        meta.evaluator_type = evaluator_type
    with pytest.raises(NotImplementedError, match=name):
        build_evaluator(build_cfg(), name)


def test_trainer_builds_evaluators_with_build_evaluator(register, coco_files, tmp_path):
    name = register("coco", {}, *coco_files)
    assert isinstance(Trainer.build_evaluator(build_cfg(), name, str(tmp_path)), COCOEvaluatorWithSubmission)


def test_solver_optimizer_chooses_sgd_or_adamw_with_detectron2s_param_groups():
    import torch

    from dcn_det.engine import build_optimizer

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    cfg = build_cfg("", ["SOLVER.BASE_LR", "0.001", "SOLVER.WEIGHT_DECAY", "0.05"])
    assert type(build_optimizer(cfg, model)) is torch.optim.SGD  # the default: detectron2's
    cfg.SOLVER.OPTIMIZER = "AdamW"
    adamw = build_optimizer(cfg, model)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["lr"] == 0.001
    # norm weights get SOLVER.WEIGHT_DECAY_NORM (0), as with SGD
    assert sorted(g["weight_decay"] for g in adamw.param_groups) == [0.0, 0.05]
    cfg.SOLVER.OPTIMIZER = "Adam"
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        build_optimizer(cfg, model)
