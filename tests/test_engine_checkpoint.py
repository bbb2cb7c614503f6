"""dcn_det.engine: AtomicCheckpointer (checkpoints and the last_checkpoint tag written
atomically) and check_weights (a missing MODEL.WEIGHTS file is an error before training)."""
import os

import pytest
import torch
from torch import nn

import dcn_det.engine as engine
from dcn_det.engine import AtomicCheckpointer, WeightsNotFoundError, build_cfg, check_weights


def _checkpointer(directory):
    torch.manual_seed(0)
    return AtomicCheckpointer(nn.Linear(3, 2), save_dir=str(directory))


def test_save_writes_a_loadable_checkpoint_and_tags_it(tmp_path):
    checkpointer = _checkpointer(tmp_path)
    checkpointer.save("model_0000009", iteration=9)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000009.pth"
    data = torch.load(tmp_path / "model_0000009.pth", weights_only=False)
    assert data["iteration"] == 9
    torch.testing.assert_close(data["model"]["weight"], checkpointer.model.weight.detach())
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000009.pth"]  # no temporary files left


def test_a_save_that_fails_midway_leaves_the_previous_checkpoint_and_tag_intact(tmp_path, monkeypatch):
    checkpointer = _checkpointer(tmp_path)
    checkpointer.save("model_final", iteration=1)
    before = (tmp_path / "model_final.pth").read_bytes()

    def crash_after_some_bytes(obj, f):
        f.write(b"partial checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(engine.torch, "save", crash_after_some_bytes)
    with torch.no_grad():
        checkpointer.model.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        checkpointer.save("model_final", iteration=2)  # overwriting the same name
    assert (tmp_path / "model_final.pth").read_bytes() == before
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_final.pth"]


def test_a_failed_save_of_a_new_name_does_not_move_the_tag(tmp_path, monkeypatch):
    checkpointer = _checkpointer(tmp_path)
    checkpointer.save("model_0000001", iteration=1)
    monkeypatch.setattr(engine.torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError):
        checkpointer.save("model_0000003", iteration=3)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert checkpointer.get_checkpoint_file() == str(tmp_path / "model_0000001.pth")


def test_only_the_main_process_saves(tmp_path):
    checkpointer = AtomicCheckpointer(nn.Linear(3, 2), save_dir=str(tmp_path), save_to_disk=False)
    checkpointer.save("model_final")
    assert os.listdir(tmp_path) == []


# --- check_weights ----------------------------------------------------------------------------


def _cfg(weights, output_dir):
    return build_cfg("", ["MODEL.WEIGHTS", str(weights), "OUTPUT_DIR", str(output_dir)])


def test_check_weights_names_a_missing_local_file(tmp_path):
    missing = tmp_path / "no_such_model.pth"
    with pytest.raises(WeightsNotFoundError, match=f"MODEL.WEIGHTS: no such file: {missing}"):
        check_weights(_cfg(missing, tmp_path))


@pytest.mark.parametrize("weights", ["", "detectron2://ImageNetPretrained/MSRA/R-50.pkl", "https://example.com/model.pth"])
def test_check_weights_accepts_empty_and_urls(weights, tmp_path):
    check_weights(_cfg(weights, tmp_path))  # URLs are fetched (and checked) by detectron2 when loading


def test_check_weights_accepts_an_existing_file(tmp_path):
    weights = tmp_path / "model.pth"
    weights.write_bytes(b"")
    check_weights(_cfg(weights, tmp_path))


def test_check_weights_ignores_missing_weights_when_resume_finds_a_checkpoint(tmp_path):
    cfg = _cfg(tmp_path / "missing.pth", tmp_path)
    with pytest.raises(WeightsNotFoundError):
        check_weights(cfg, resume=True)  # nothing to resume from yet
    (tmp_path / "last_checkpoint").write_text("model_0000001.pth")
    check_weights(cfg, resume=True)
    with pytest.raises(WeightsNotFoundError):
        check_weights(cfg, resume=False)
