"""``deform_psroi_pool_composite`` (standard tensor ops, the export path) against the compiled
``dcn_det.ops.deform_psroi_pool`` (tested on its own against the reference and hand cases)."""
import pytest
import torch

from dcn_det.ops import deform_psroi_pool
from dcn_det.ops.deform_psroi_pool_composite import _c_round, deform_psroi_bin_starts, deform_psroi_pool_composite

from tests.ops.deform_psroi_pool_reference import HAND_CASES, sample_positions


def _random_case(gen: torch.Generator, trial: int):
    """Sizes, RoIs that reach outside the map, a zero-area and an inverted RoI, no_trans /
    class-agnostic / class-specific offsets, part sizes other than pooled_size."""
    rand = lambda lo, hi: int(torch.randint(lo, hi, (1,), generator=gen))  # noqa: E731
    N, G, P, D, S = rand(1, 3), rand(1, 4), rand(1, 5), rand(1, 4), rand(1, 4)
    H, W, R, part = rand(1, 12), rand(1, 12), rand(2, 7), rand(0, 4)
    scale = (1.0, 0.5, 0.25, 1 / 16)[trial % 4]
    image = torch.tensor([W, H, W, H]) / scale
    corners = (torch.rand(R, 4, generator=gen) * 1.6 - 0.3) * image
    rois = torch.cat([torch.randint(0, N, (R, 1), generator=gen).float(), corners], dim=1)
    rois[0, 3:] = rois[0, 1:3]  # zero area
    rois[1, 1:] = torch.stack([rois[1, 3], rois[1, 4], rois[1, 1], rois[1, 2]])  # (x2, y2, x1, y1)
    no_trans = trial % 3 == 0
    classes = 1 if trial % 2 else D
    offset = None if no_trans else torch.randn(R, 2 * classes, part or P, part or P, generator=gen)
    x = torch.randn(N, D * G * G, H, W, generator=gen)
    return x, rois, offset, (scale, D, G, P, part, S, 0.3, no_trans)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_cases_match_the_compiled_op(dtype):
    gen = torch.Generator().manual_seed(7)
    for trial in range(40):
        x, rois, offset, args = _random_case(gen, trial)
        x, rois = x.to(dtype), rois.to(dtype)
        offset = None if offset is None else offset.to(dtype)
        expected = deform_psroi_pool(x, rois, offset, *args)
        got = deform_psroi_pool_composite(x, rois, offset, *args)
        assert got.dtype == dtype and got.shape == expected.shape
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(got, expected, atol=tol, rtol=tol, msg=f"trial {trial}, args {args}")


@pytest.mark.parametrize("case", HAND_CASES, ids=lambda c: c.name)
def test_hand_computed_cases(case):
    x, rois, offset = case.tensors()
    got = deform_psroi_pool_composite(x, rois, offset, **case.kwargs)
    torch.testing.assert_close(got, case.expected_tensor(), atol=1e-12, rtol=0)


def test_half_precision_is_computed_in_float32():
    gen = torch.Generator().manual_seed(3)
    x, rois, offset, args = _random_case(gen, 1)
    expected = deform_psroi_pool(x.half(), rois.half(), offset.half(), *args)
    got = deform_psroi_pool_composite(x.half(), rois.half(), offset.half(), *args)
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), expected.float(), atol=2e-3, rtol=0)


def test_no_rois_and_nan_offsets():
    x = torch.randn(1, 4, 5, 5)
    empty = deform_psroi_pool_composite(x, torch.zeros(0, 5), torch.zeros(0, 2, 2, 2), 1.0, 1, 2, 2, 0, 2, 0.1)
    assert empty.shape == (0, 1, 2, 2)
    rois = torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]])
    offset = torch.zeros(1, 2, 2, 2)
    offset[0, 0, 0, 1] = float("nan")  # bin (0, 1) reads it: all its samples are skipped
    expected = deform_psroi_pool(x, rois, offset, 1.0, 1, 2, 2, 0, 2, 0.1)
    got = deform_psroi_pool_composite(x, rois, offset, 1.0, 1, 2, 2, 0, 2, 0.1)
    assert got[0, 0, 0, 1] == 0
    torch.testing.assert_close(got, expected)


def test_invalid_batch_index_pools_to_zero():
    # The compiled op rejects it (ValueError); an exported graph cannot raise, so it outputs 0.
    x = torch.randn(1, 1, 4, 4)
    rois = torch.tensor([[1, 0.0, 0.0, 3.0, 3.0], [-1, 0.0, 0.0, 3.0, 3.0], [0, 0.0, 0.0, 3.0, 3.0]])
    got = deform_psroi_pool_composite(x, rois, None, 1.0, 1, 1, 2, no_trans=True)
    assert torch.equal(got[:2], torch.zeros(2, 1, 2, 2))
    torch.testing.assert_close(got[2:], deform_psroi_pool(x, rois[2:], None, 1.0, 1, 1, 2, no_trans=True))


def test_c_round_sends_halves_away_from_zero():
    x = torch.tensor([-2.5, -1.5, -0.5, 0.49999997, 0.5, 1.5, 2.5, 2.4, -2.6])
    assert _c_round(x).tolist() == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 2.0, -3.0]


def test_wrong_channel_count_names_the_rule():
    with pytest.raises(ValueError, match="output_dim \\* group_size\\^2"):
        deform_psroi_pool_composite(torch.randn(1, 5, 4, 4), torch.zeros(1, 5), None, 1.0, 1, 2, 2, no_trans=True)


def test_bin_starts_are_the_reference_first_sample_of_every_bin():
    # deform_psroi_bin_starts is what the export path pools at and what the pictures draw:
    # its (wstart, hstart) must be the reference's sample (0, 0) of each bin, and its bin size
    # S times the reference's sample step.
    gen = torch.Generator().manual_seed(11)
    for trial in range(24):
        x, rois, offset, (scale, D, G, P, part, S, trans_std, no_trans) = _random_case(gen, trial)
        rois = rois.double()
        offset = None if offset is None else offset.double()
        w, h = sample_positions(rois, offset, scale, D, P, part, S, trans_std, no_trans)  # [R, D, P, P, S, S]
        starts = deform_psroi_bin_starts(rois, offset, scale, P, part, trans_std)
        K = 1 if offset is None else offset.shape[1] // 2
        R = rois.shape[0]
        for k in range(K):
            channel = k * (D // K)  # the first output channel of offset class k
            torch.testing.assert_close(starts.wstart[:, min(k, starts.wstart.shape[1] - 1)].expand(R, P, P),
                                       w[:, channel, :, :, 0, 0], atol=1e-12, rtol=0, msg=f"trial {trial}")
            torch.testing.assert_close(starts.hstart[:, min(k, starts.hstart.shape[1] - 1)].expand(R, P, P),
                                       h[:, channel, :, :, 0, 0], atol=1e-12, rtol=0, msg=f"trial {trial}")
        if S > 1:
            torch.testing.assert_close(starts.bin_w / S, w[:, 0, 0, 0, 0, 1] - w[:, 0, 0, 0, 0, 0], atol=1e-9, rtol=0)
            torch.testing.assert_close(starts.bin_h / S, h[:, 0, 0, 0, 1, 0] - h[:, 0, 0, 0, 0, 0], atol=1e-9, rtol=0)
