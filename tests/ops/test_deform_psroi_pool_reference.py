"""Self-tests of the deform_psroi_pool reference (tests/ops/deform_psroi_pool_reference.py).

These do not need the compiled operator: they check the reference against values derived
on paper, against a scalar transcription of the per-element formulas (with the original's
explicit backward formulas), and its autograd against finite differences.
"""
import math

import numpy as np
import pytest
import torch

from tests.ops.deform_psroi_pool_reference import (
    GRADCHECK_ARGS,
    GRADCHECK_MARGIN,
    HAND_CASES,
    c_round,
    deform_psroi_pool_reference,
    gradcheck_case,
    kink_margin,
    ramp,
)


def test_c_round_sends_halves_away_from_zero():
    x = torch.tensor([2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 2.4999, -2.6, 0.0], dtype=torch.float64)
    expected = torch.tensor([3.0, -3.0, 1.0, -1.0, 2.0, -2.0, 2.0, -3.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(c_round(x), expected, rtol=0, atol=0)
    # torch.round sends halves to even: this is why the reference does not use it
    assert torch.round(torch.tensor(2.5)).item() == 2.0


@pytest.mark.parametrize("case", HAND_CASES, ids=[c.name for c in HAND_CASES])
def test_reference_hand_computed_value(case):
    inp, rois, off = case.tensors()
    out = deform_psroi_pool_reference(inp, rois, off, **case.kwargs)
    torch.testing.assert_close(out, case.expected_tensor(), rtol=1e-12, atol=1e-12)


GRAD_CASES = [
    c for c in HAND_CASES if c.expected_offset_grad is not None or c.expected_input_grad is not None
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_reference_hand_computed_gradients(case):
    inp, rois, off = case.tensors()
    inp.requires_grad_(True)
    off.requires_grad_(True)
    deform_psroi_pool_reference(inp, rois, off, **case.kwargs).sum().backward()
    if case.expected_input_grad is not None:
        torch.testing.assert_close(inp.grad, case.expected_input_grad(), rtol=1e-12, atol=1e-12)
    if case.expected_offset_grad is not None:
        expected = torch.tensor(case.expected_offset_grad, dtype=torch.float64)
        torch.testing.assert_close(off.grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name, value_with_torch_round",
    [("c_round_positive_halves", 5.5), ("c_round_negative_half", 1.5)],
)
def test_round_cases_tell_c_round_from_round_half_even(name, value_with_torch_round):
    case = next(c for c in HAND_CASES if c.name == name)
    inp, rois, off = case.tensors()
    rois[:, 1:] = torch.round(rois[:, 1:])  # already integral: the reference's round is a no-op
    out = deform_psroi_pool_reference(inp, rois, off, **case.kwargs)
    assert out.item() == pytest.approx(value_with_torch_round)
    assert out.item() != pytest.approx(case.expected[0][0][0][0])


# ------------------------------ scalar transcription ------------------------------------


def _scalar_forward_backward(inp, rois, off, grad_out, scale, output_dim, group_size, pooled,
                             part, spp, trans_std, no_trans):
    """Per-output-element loops with Python floats, plus the original's explicit backward
    (input: bilinear weights * grad / count; offset: bilinear slope * trans_std * roi size
    * grad / count). Independent of the vectorised indexing of the reference."""
    x = inp.detach().numpy()
    r_ = rois.detach().numpy()
    o_ = None if off is None else off.detach().numpy()
    g_ = grad_out.detach().numpy()
    _, _, H, W = x.shape
    R = r_.shape[0]
    part = part or pooled
    out = np.zeros((R, output_dim, pooled, pooled))
    gin = np.zeros_like(x)
    goff = None if o_ is None else np.zeros_like(o_)
    if no_trans:
        num_classes, per_class = 1, output_dim
    else:
        num_classes = o_.shape[1] // 2
        per_class = output_dim // num_classes

    def cround(v):
        return math.copysign(math.floor(abs(v) + 0.5), v)

    for n in range(R):
        b = int(r_[n, 0])
        sw = cround(r_[n, 1]) * scale - 0.5
        sh = cround(r_[n, 2]) * scale - 0.5
        ew = (cround(r_[n, 3]) + 1.0) * scale - 0.5
        eh = (cround(r_[n, 4]) + 1.0) * scale - 0.5
        rw, rh = max(ew - sw, 0.1), max(eh - sh, 0.1)
        bw, bh = rw / pooled, rh / pooled
        subw, subh = bw / spp, bh / spp
        for c in range(output_dim):
            for ph in range(pooled):
                for pw in range(pooled):
                    parth = math.floor(ph / pooled * part)
                    partw = math.floor(pw / pooled * part)
                    cls = c // per_class
                    tx = 0.0 if no_trans else o_[n, 2 * cls, parth, partw] * trans_std
                    ty = 0.0 if no_trans else o_[n, 2 * cls + 1, parth, partw] * trans_std
                    wstart = pw * bw + sw + tx * rw
                    hstart = ph * bh + sh + ty * rh
                    gw = min(max(math.floor(pw * group_size / pooled), 0), group_size - 1)
                    gh = min(max(math.floor(ph * group_size / pooled), 0), group_size - 1)
                    ch = (c * group_size + gh) * group_size + gw
                    img = x[b, ch]
                    kept = []
                    for ih in range(spp):
                        for iw in range(spp):
                            w = wstart + iw * subw
                            h = hstart + ih * subh
                            if w < -0.5 or w > W - 0.5 or h < -0.5 or h > H - 0.5:
                                continue
                            kept.append((min(max(h, 0.0), H - 1.0), min(max(w, 0.0), W - 1.0)))
                    if not kept:
                        continue
                    total = 0.0
                    dv = g_[n, c, ph, pw] / len(kept)
                    for h, w in kept:
                        x0, x1, y0, y1 = math.floor(w), math.ceil(w), math.floor(h), math.ceil(h)
                        dx, dy = w - x0, h - y0
                        u00, u01, u10, u11 = img[y0, x0], img[y1, x0], img[y0, x1], img[y1, x1]
                        total += ((1 - dx) * (1 - dy) * u00 + (1 - dx) * dy * u01
                                  + dx * (1 - dy) * u10 + dx * dy * u11)
                        gin[b, ch, y0, x0] += (1 - dx) * (1 - dy) * dv
                        gin[b, ch, y1, x0] += (1 - dx) * dy * dv
                        gin[b, ch, y0, x1] += dx * (1 - dy) * dv
                        gin[b, ch, y1, x1] += dx * dy * dv
                        if not no_trans:
                            sx = u11 * dy + u10 * (1 - dy) - u01 * dy - u00 * (1 - dy)
                            sy = u11 * dx + u01 * (1 - dx) - u10 * dx - u00 * (1 - dx)
                            goff[n, 2 * cls, parth, partw] += sx * trans_std * dv * rw
                            goff[n, 2 * cls + 1, parth, partw] += sy * trans_std * dv * rh
                    out[n, c, ph, pw] = total / len(kept)
    return out, gin, goff


# (output_dim, group, pooled, part, spp, trans_std, no_trans, num_classes (0: agnostic), scale)
SCALAR_CONFIGS = [
    (2, 1, 3, 0, 2, 0.1, False, 0, 0.5),
    (2, 2, 3, 2, 2, 0.1, False, 2, 1.0),
    (1, 3, 3, 5, 1, 0.3, False, 0, 0.25),
    (3, 2, 2, 0, 3, 0.0, True, 0, 1.0),
]


def _random_case(gen, output_dim, group, pooled, part, num_classes, scale, N=2, H=7, W=6, R=6):
    inp = torch.randn(N, output_dim * group * group, H, W, generator=gen, dtype=torch.float64)
    img_w, img_h = W / scale, H / scale
    rows = [
        [0, 0.3 * img_w, 0.2 * img_h, 0.8 * img_w, 0.9 * img_h],      # inside, fractional
        [1, -0.4 * img_w, 0.5 * img_h, 0.3 * img_w, 1.3 * img_h],     # partly outside
        [0, 1.3 * img_w, -0.9 * img_h, 1.9 * img_w, -0.2 * img_h],    # fully outside
        [1, 0.7 * img_w, 0.6 * img_h, 0.2 * img_w, 0.1 * img_h],      # x2 < x1, y2 < y1
        [0, 2.5, 1.5, 2.5 + 2 / scale, 3.5 + 2 / scale],              # exact .5 halves
        [1, -0.5, -2.5, 0.5 / scale, 0.5 / scale],                    # negative halves
    ][:R]
    rois = torch.tensor(rows, dtype=torch.float64)
    part_eff = part or pooled
    nc = 1 if num_classes == 0 else num_classes
    off = torch.randn(R, 2 * nc, part_eff, part_eff, generator=gen, dtype=torch.float64)
    return inp, rois, off


@pytest.mark.parametrize("config", SCALAR_CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_reference_matches_scalar_transcription(config):
    output_dim, group, pooled, part, spp, trans_std, no_trans, num_classes, scale = config
    gen = torch.Generator().manual_seed(1234)
    inp, rois, off = _random_case(gen, output_dim, group, pooled, part, num_classes, scale)
    inp.requires_grad_(True)
    off.requires_grad_(True)
    out = deform_psroi_pool_reference(inp, rois, off, scale, output_dim, group, pooled, part,
                                      spp, trans_std, no_trans)
    grad_out = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    out.backward(grad_out)
    s_out, s_gin, s_goff = _scalar_forward_backward(inp, rois, off, grad_out, scale, output_dim,
                                                    group, pooled, part, spp, trans_std, no_trans)
    assert (out.detach().numpy() != 0).any()
    np.testing.assert_allclose(out.detach().numpy(), s_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inp.grad.numpy(), s_gin, rtol=1e-12, atol=1e-12)
    if no_trans:
        assert off.grad is None
    else:
        np.testing.assert_allclose(off.grad.numpy(), s_goff, rtol=1e-12, atol=1e-12)


def test_reference_autograd_matches_finite_differences():
    inp, rois, off = gradcheck_case()
    assert kink_margin(rois, off, 8, 8, *GRADCHECK_ARGS) > GRADCHECK_MARGIN
    inp.requires_grad_(True)
    off.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda i, o: deform_psroi_pool_reference(i, rois, o, *GRADCHECK_ARGS),
        (inp, off), eps=1e-6, atol=1e-6, fast_mode=True,
    )


def test_reference_zero_rois_gives_empty_output():
    inp = torch.randn(1, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    out = deform_psroi_pool_reference(inp, torch.zeros(0, 5, dtype=torch.float64),
                                      torch.zeros(0, 2, 3, 3, dtype=torch.float64),
                                      1.0, 1, 2, 3, 0, 2, 0.1, False)
    assert out.shape == (0, 1, 3, 3)
    out.sum().backward()
    assert inp.grad.shape == inp.shape and not inp.grad.any()


def test_reference_no_trans_ignores_offset():
    inp = ramp(5, 5, 3, 1)
    rois = torch.tensor([[0, 0.5, 1.0, 3.5, 4.0]], dtype=torch.float64)
    off = torch.full((1, 2, 2, 2), 3.0, dtype=torch.float64)
    a = deform_psroi_pool_reference(inp, rois, off, 1.0, 1, 1, 2, 0, 2, 0.5, True)
    b = deform_psroi_pool_reference(inp, rois, None, 1.0, 1, 1, 2, 0, 2, 0.5, True)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
