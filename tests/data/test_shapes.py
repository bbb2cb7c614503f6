"""The generated shapes data set (dcn_det.data.shapes)."""
import hashlib
import json
import os

import cv2
import numpy as np
import pytest

from dcn_det.data import shapes
from dcn_det.data.shapes import CLASSES, SplitSpec, draw_image, draw_image_and_labels, generate_split


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
        for name in ("shapes_test_tiny", "shapes_test_tiny_sem_seg"):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_add_dcn_config_registers_the_demo_splits():
    import dcn_det
    from detectron2.config import get_cfg
    from detectron2.data import DatasetCatalog

    dcn_det.add_dcn_config(get_cfg())

    assert {"shapes_dcn_train", "shapes_dcn_val", "shapes_dcn_val_scaled"} <= set(DatasetCatalog.list())


# --- masks and semantic labels (added beside the images; the images and boxes are unchanged) ---


def test_images_and_boxes_are_those_of_the_detection_only_generator():
    """Fingerprint of every 7th image and its boxes in each split, taken from the generator
    before masks and labels were added (GENERATOR_VERSION 2): the demo's results depend on them."""
    digest = hashlib.sha256()
    for spec in shapes.SPLITS.values():
        for i in range(0, spec.num_images, 7):
            img, anns = draw_image(spec, i)
            boxes_only = [{k: v for k, v in a.items() if k != "segmentation"} for a in anns]
            digest.update(img.tobytes())
            digest.update(json.dumps(boxes_only, sort_keys=True).encode())
    for _, mask in sorted(shapes._MASKS.items()):
        digest.update(mask.tobytes())
    assert digest.hexdigest() == "62685b0a61039eb9e456170f63fd9e7683b9d4147a3426f1a6d20aee44502cac", (
        f"generated data changed (OpenCV {cv2.__version__}; the data is defined by OpenCV "
        f"{shapes.OPENCV_DRAWING_VERSION}, pinned in requirements.txt)"
    )


def _polygon_mask(polygons, h, w):
    from pycocotools import mask as mask_util

    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(polygons, h, w))).astype(bool)


def test_mask_polygons_outline_the_drawn_object():
    spec = SplitSpec(num_images=40, seed=5, objects=(1, 1))  # one object: nothing hides it
    h, w = spec.image_size
    seen = set()
    for i in range(40):
        _, anns, labels = draw_image_and_labels(spec, i)
        for a in anns:
            drawn = labels == a["category_id"]
            polygon = _polygon_mask(a["segmentation"], h, w)
            iou = (drawn & polygon).sum() / (drawn | polygon).sum()
            assert iou > 0.8, (i, CLASSES[a["category_id"] - 1], iou)
            seen.add(a["category_id"])
    assert len(seen) == len(CLASSES)


def test_semantic_labels_are_the_class_of_the_object_on_top():
    spec = SplitSpec(num_images=10, seed=6)
    for i in range(10):
        _, anns, labels = draw_image_and_labels(spec, i)
        assert labels.dtype == np.uint8 and set(np.unique(labels)) <= set(range(len(CLASSES) + 1))
        inside = np.zeros_like(labels, bool)
        for a in anns:
            x, y, bw, bh = (int(v) for v in a["bbox"])
            inside[y : y + bh, x : x + bw] = True
        assert not labels[~inside].any()  # nothing labelled outside every box
        assert set(np.unique(labels[inside])) - {0} == {a["category_id"] for a in anns}


def test_generate_split_writes_label_pngs_and_polygons(tmp_path):
    import cv2

    spec = SplitSpec(num_images=3, seed=12)
    coco = json.load(open(generate_split("tiny", str(tmp_path), spec, progress=False)))
    assert all(len(p) >= 6 and len(p) % 2 == 0 for a in coco["annotations"] for p in a["segmentation"])
    for i in range(3):
        written = cv2.imread(str(tmp_path / "tiny" / "sem_seg" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(written, draw_image_and_labels(spec, i)[2])


def test_cache_written_without_labels_is_rewritten(tmp_path):
    spec = SplitSpec(num_images=2, seed=11)
    json_file = generate_split("tiny", str(tmp_path), spec, progress=False)
    coco = json.load(open(json_file))
    del coco["info"]["labels_version"]  # as the detection-only generator wrote it
    json.dump(coco, open(json_file, "w"))
    generate_split("tiny", str(tmp_path), spec, progress=False)
    assert json.load(open(json_file))["info"]["labels_version"] == shapes.LABELS_VERSION
    assert len(os.listdir(tmp_path / "tiny" / "sem_seg")) == 2


def test_registered_split_has_masks_and_a_semantic_segmentation_twin(tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    shapes.register_shapes_datasets(str(tmp_path), {"shapes_test_masks": SplitSpec(num_images=2, seed=4)})
    try:
        instances = DatasetCatalog.get("shapes_test_masks")
        assert all("segmentation" in a for d in instances for a in d["annotations"])
        semantic = DatasetCatalog.get("shapes_test_masks_sem_seg")
        assert len(semantic) == 2 and all(os.path.exists(d["sem_seg_file_name"]) for d in semantic)
        meta = MetadataCatalog.get("shapes_test_masks_sem_seg")
        assert (meta.evaluator_type, meta.ignore_label, meta.stuff_classes) == ("sem_seg", 255, ["background", *CLASSES])
    finally:
        for name in ("shapes_test_masks", "shapes_test_masks_sem_seg"):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
