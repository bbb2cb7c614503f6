"""dcn_det.layers.as_rois: the RoI formats the pooling modules accept."""
import pytest
import torch

from dcn_det.layers import as_rois


class _BoxesLike:
    """Stands for detectron2.structures.Boxes (which exposes `.tensor`)."""

    def __init__(self, tensor):
        self.tensor = tensor


def test_list_of_boxes_becomes_rois_with_batch_index():
    a = torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8]])
    b = torch.tensor([[9.0, 10, 11, 12]])
    rois = as_rois([_BoxesLike(a), b])
    expected = torch.tensor([[0.0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [1, 9, 10, 11, 12]])
    torch.testing.assert_close(rois, expected)


def test_detectron2_boxes_are_accepted():
    structures = pytest.importorskip("detectron2.structures")
    boxes = [structures.Boxes(torch.tensor([[1.0, 2, 3, 4]])), structures.Boxes(torch.zeros(0, 4))]
    torch.testing.assert_close(as_rois(boxes), torch.tensor([[0.0, 1, 2, 3, 4]]))


def test_rois_tensor_passes_through():
    rois = torch.rand(3, 5)
    assert as_rois(rois) is rois


def test_empty_list_gives_zero_rois():
    assert as_rois([]).shape == (0, 5)


@pytest.mark.parametrize("bad", [torch.zeros(3, 4), [torch.zeros(2, 5)], "boxes"])
def test_bad_rois_raise_naming_rois(bad):
    with pytest.raises((ValueError, TypeError), match="rois"):
        as_rois(bad)
