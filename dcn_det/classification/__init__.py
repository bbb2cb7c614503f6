"""The demo's classification study: a small CNN and its deformable twins on digits
(torch and dcn_det.layers only; no detectron2)."""
from .model import VARIANTS, DigitCNN
from .study import StudyConfig, run_study, study_table, verdicts

__all__ = ["VARIANTS", "DigitCNN", "StudyConfig", "run_study", "study_table", "verdicts"]
