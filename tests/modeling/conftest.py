"""Session-wide tiny data sets, registered with detectron2 under unique names and removed at
the end of the session."""
import uuid

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances, register_pascal_voc
from detectron2.data.datasets.pascal_voc import CLASS_NAMES as VOC_CLASS_NAMES

from .synthetic import draw_images, write_coco, write_voc

SHAPE_CATEGORIES = [{"id": 1, "name": "box"}, {"id": 2, "name": "disc"}, {"id": 3, "name": "frame"}]
# The shapes drawn as VOC classes (class 0, 1, 2 of the generator).
VOC_SHAPE_CLASSES = ("bottle", "bicycle", "tvmonitor")


def _unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _unregister(name):
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


@pytest.fixture(scope="session")
def coco_shapes(tmp_path_factory):
    """12 annotated images of 3 shape classes in COCO format; yields the data set name."""
    root = tmp_path_factory.mktemp("coco_shapes")
    json_file, image_root = str(root / "annotations" / "instances.json"), str(root / "images")
    write_coco(json_file, image_root, draw_images(12, seed=0), SHAPE_CATEGORIES)
    name = _unique("dcn_test_coco_shapes")
    register_coco_instances(name, {}, json_file, image_root)
    yield name
    _unregister(name)


@pytest.fixture(scope="session")
def coco_shapes_test_dev(tmp_path_factory):
    """4 images, categories but no "annotations" key (as COCO test-dev)."""
    root = tmp_path_factory.mktemp("coco_shapes_test_dev")
    json_file, image_root = str(root / "annotations" / "image_info_test.json"), str(root / "images")
    write_coco(json_file, image_root, draw_images(4, seed=1), SHAPE_CATEGORIES, with_annotations=False)
    name = _unique("dcn_test_coco_shapes_test_dev")
    register_coco_instances(name, {}, json_file, image_root)
    yield name
    _unregister(name)


@pytest.fixture(scope="session")
def voc_shapes(tmp_path_factory):
    """A VOC2007-style folder (8 images, detectron2's 20 VOC class names, 3 of them used),
    registered like detectron2's built-in VOC splits; yields the data set name."""
    dirname = str(tmp_path_factory.mktemp("voc") / "VOC2007")
    class_ids = [VOC_CLASS_NAMES.index(c) for c in VOC_SHAPE_CLASSES]
    write_voc(dirname, draw_images(8, seed=2), [VOC_CLASS_NAMES[i] for i in class_ids], "test")
    name = _unique("dcn_test_voc_2007_test")
    register_pascal_voc(name, dirname, "test", 2007, VOC_CLASS_NAMES)
    MetadataCatalog.get(name).evaluator_type = "pascal_voc"
    yield name
    _unregister(name)
