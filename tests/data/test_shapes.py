"""The generated shapes data set (dcn_det.data.shapes)."""
import json
import os

import numpy as np
import pytest

from dcn_det.data import shapes
from dcn_det.data.shapes import CLASSES, SplitSpec, draw_image, generate_split


def test_images_are_deterministic():
    spec = SplitSpec(num_images=3, seed=7)
    a, anns_a = draw_image(spec, 2)
    b, anns_b = draw_image(spec, 2)
    assert np.array_equal(a, b) and anns_a == anns_b
    c, _ = draw_image(SplitSpec(num_images=3, seed=8), 2)
    assert not np.array_equal(a, c)


def test_boxes_are_inside_the_image_and_enclose_the_object():
    spec = SplitSpec(num_images=20, seed=9)
    h, w = spec.image_size
    for i in range(20):
        img, anns = draw_image(spec, i)
        assert img.shape == (h, w, 3)
        for a in anns:
            x, y, bw, bh = a["bbox"]
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h
            assert bw >= 1 and bh >= 1 and a["area"] <= bw * bh
            assert 1 <= a["category_id"] <= len(CLASSES)


def test_scaled_split_goes_beyond_the_training_scales():
    train, scaled = shapes.SPLITS["shapes_dcn_train"], shapes.SPLITS["shapes_dcn_val_scaled"]
    assert scaled.scale[1] < train.scale[0] and scaled.scale_extra[0] > train.scale[1]
    assert scaled.rotation_deg[1] > train.rotation_deg[1] and scaled.shear[1] > train.shear[1]


def test_generate_split_writes_coco_json_once(tmp_path):
    spec = SplitSpec(num_images=4, seed=11)
    json_file = generate_split("tiny", str(tmp_path), spec, progress=False)
    coco = json.load(open(json_file))
    assert [c["name"] for c in coco["categories"]] == list(CLASSES)
    assert len(coco["images"]) == 4 and coco["annotations"]
    assert all(os.path.exists(tmp_path / "tiny" / "images" / im["file_name"]) for im in coco["images"])
    mtime = os.path.getmtime(json_file)
    assert generate_split("tiny", str(tmp_path), spec, progress=False) == json_file
    assert os.path.getmtime(json_file) == mtime  # cached, not regenerated


def test_cache_of_an_older_generator_version_is_regenerated(tmp_path, monkeypatch):
    spec = SplitSpec(num_images=2, seed=11)
    json_file = generate_split("tiny", str(tmp_path), spec, progress=False)
    assert json.load(open(json_file))["info"]["version"] == shapes.GENERATOR_VERSION
    monkeypatch.setattr(shapes, "GENERATOR_VERSION", shapes.GENERATOR_VERSION + 1)
    generate_split("tiny", str(tmp_path), spec, progress=False)
    assert json.load(open(json_file))["info"]["version"] == shapes.GENERATOR_VERSION
    assert sorted(os.listdir(tmp_path)) == ["tiny"]  # no temporary folder left behind


def test_interrupted_generation_leaves_no_split_behind(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(shapes.cv2, "imwrite", fail)
    with pytest.raises(KeyboardInterrupt):
        generate_split("broken", str(tmp_path), SplitSpec(num_images=2, seed=1), progress=False)
    assert os.listdir(tmp_path) == []


def test_registered_split_loads_through_detectron2(tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    shapes.register_shapes_datasets(str(tmp_path), {"shapes_test_tiny": SplitSpec(num_images=3, seed=4)})
    try:
        dicts = DatasetCatalog.get("shapes_test_tiny")
        assert len(dicts) == 3 and os.path.exists(dicts[0]["file_name"])
        assert MetadataCatalog.get("shapes_test_tiny").evaluator_type == "coco"
        assert MetadataCatalog.get("shapes_test_tiny").thing_classes == list(CLASSES)
    finally:
        DatasetCatalog.remove("shapes_test_tiny")
        MetadataCatalog.remove("shapes_test_tiny")


def test_add_dcn_config_registers_the_demo_splits():
    import dcn_det
    from detectron2.config import get_cfg
    from detectron2.data import DatasetCatalog

    dcn_det.add_dcn_config(get_cfg())

    assert {"shapes_dcn_train", "shapes_dcn_val", "shapes_dcn_val_scaled"} <= set(DatasetCatalog.list())
