"""DigitCNN and its deformable twins: shapes, the zero-offset start, the offset fields the
figure reads, and the study's tables and verdicts."""
import pytest
import torch

from dcn_det.classification import DigitCNN
from dcn_det.classification.study import StudyConfig, run_study, sampling_figure, spread_ratio, study_table, verdicts
from dcn_det.classification import digits


def _copy_plain_weights(plain, twin, conv_scale=1.0):
    state = {k: v.clone() for k, v in plain.state_dict().items()}
    for name in ("conv3", "conv4"):
        state[f"{name}.weight"] = state[f"{name}.weight"] * conv_scale
    missing, unexpected = twin.load_state_dict(state, strict=False)
    assert not unexpected and all(".conv_offset." in k for k in missing), missing


@pytest.mark.parametrize("variant, conv_scale", [("dcnv1", 1.0), ("dcnv2", 2.0)])
def test_a_fresh_twin_computes_the_plain_cnn(variant, conv_scale):
    # Zero-initialised offset branches: DCNv1 = the regular conv; DCNv2 = the regular conv
    # times the mask 0.5 (so with doubled weights, the same outputs).
    torch.manual_seed(0)
    plain = DigitCNN("plain").eval()
    for m in plain.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    twin = DigitCNN(variant).eval()
    _copy_plain_weights(plain, twin, conv_scale)
    x = torch.rand(3, 1, 40, 40)
    torch.testing.assert_close(twin(x), plain(x), atol=1e-5, rtol=1e-5)
    assert plain(x).shape == (3, 10)


def test_offset_fields_and_offset_parameters():
    plain, twin = DigitCNN("plain"), DigitCNN("dcnv2")
    image = torch.rand(1, 1, 40, 40)
    assert plain.offset_fields(image) == [None, None] and plain.offset_parameters() == []
    fields = twin.offset_fields(image)
    assert [f.shape for f in fields] == [(18, 10, 10), (18, 10, 10)] and all(float(f.abs().max()) == 0 for f in fields)
    # 2 layers x (weight, bias) of the 27-channel offset + mask branch
    assert [tuple(p.shape) for p in twin.offset_parameters()] == [(27, 64, 3, 3), (27,), (27, 64, 3, 3), (27,)]


def test_bad_arguments_name_what_is_expected():
    with pytest.raises(ValueError, match="variant must be one of"):
        DigitCNN("dcnv3")
    with pytest.raises(ValueError, match="channels must give 4 widths"):
        DigitCNN("plain", channels=(8, 8))


def test_tiny_study_trains_every_model_and_seed_learns_and_draws():
    cfg = StudyConfig(train_size=600, test_size=200, epochs=2, batch_size=16, seeds=(0, 1), channels=(16, 32, 32, 32))
    lines = []
    rows, models, seconds = run_study(cfg, log=lines.append)
    assert len(rows) == 3 * 2 * 3 and seconds > 0 and len(lines) == 1 + 3 * 2
    assert {(r["model"], r["split"], r["seed"]) for r in rows} == {
        (m, s, seed) for m in ("plain", "dcnv1", "dcnv2") for s in digits.SPLITS for seed in (0, 1)}
    assert all(r["study"] == "classification" and 0 <= r["accuracy"] <= 100 for r in rows)
    # 2 epochs of 600 digits at one scale: far above chance (10 %) on the same distribution
    assert all(r["accuracy"] > 60 for r in rows if r["split"] == "in_range"), rows
    # the deformable layers moved away from the regular grid (their offsets were trained)
    glyph = digits.generated_glyphs(1, seed=9)[0][0]
    image = digits.placed_glyph(glyph, 1.0)
    assert all(float(f.abs().max()) > 1e-3 for f in models["dcnv1"].offset_fields(image))
    assert spread_ratio(models["plain"], glyph) == pytest.approx(1.0)
    figure = sampling_figure(models, glyph)
    assert figure.shape == (2 * (40 * 6 + 4), 3 * (40 * 6 + 4), 3) and figure.std() > 20


def _rows(model, split, values):
    return [{"study": "classification", "model": model, "split": split, "seed": i, "accuracy": v} for i, v in enumerate(values)]


def test_table_gives_mean_and_sample_std_per_model_and_split():
    rows = (_rows("plain", "in_range", [98.0, 99.0, 100.0]) + _rows("plain", "scaled", [50.0, 52.0, 54.0])
            + _rows("plain", "rotated", [70.0, 70.0, 70.0]))
    table = study_table(rows)
    assert "| plain | 3 | 99.0 ± 1.0 | 52.0 ± 2.0 | 70.0 ± 0.0 |" in table.splitlines()


def test_verdicts_call_a_difference_only_beyond_the_spread():
    rows = (_rows("plain", "scaled", [50.0, 52.0, 54.0]) + _rows("dcnv1", "scaled", [55.0, 56.0, 60.0])
            + _rows("plain", "rotated", [70.0, 75.0, 80.0]) + _rows("dcnv1", "rotated", [72.0, 79.0, 85.0]))
    text = verdicts(rows)
    assert text[0].startswith("dcnv1 on scaled: better than plain (+5.0 points")
    assert text[1].startswith("dcnv1 on rotated: not distinguishable from plain (+3.7 points")
    worse = verdicts(_rows("plain", "scaled", [50.0, 52.0]) + _rows("dcnv2", "scaled", [40.0, 41.0]))
    assert worse[0].startswith("dcnv2 on scaled: worse than plain")
