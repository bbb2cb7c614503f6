import pytest

from .train_net_helpers import write_datasets


@pytest.fixture(scope="session")
def datasets_root(tmp_path_factory):
    """$DETECTRON2_DATASETS with a tiny coco_2017_val (see train_net_helpers)."""
    return write_datasets(tmp_path_factory.mktemp("detectron2_datasets"))
