"""A tiny detector whose deformable branches actually deform, for export tests.

Freshly built models start with zero offset branches (they equal the plain model) and with
BatchNorm statistics of 0 / 1, under which activations grow by orders of magnitude from stage
to stage; a deformable layer then samples tens of pixels away and the model becomes so
sensitive that a 1e-7 relative change of the input changes res4 by more than 10% (measured).
This gives the offset and mask branches small random weights and sets the BatchNorm statistics
from one image, so that offsets are a few pixels and two correct implementations agree to
float32 rounding. The RPN's objectness and the box classifier get larger weights (and the box
regressors smaller ones): with random weights their scores are nearly equal, and which of two near-tied boxes survives top-k and NMS
then depends on the last bits (kernels differ there from onnxruntime's and between CPU
instruction sets)."""
import torch
from detectron2.modeling import build_model

OFFSET_WEIGHT_STD = 0.01
SCORE_WEIGHT_GAIN = 20.0
DELTA_WEIGHT_GAIN = 0.1  # small box deltas: a tiny feature change moves a box a little
# Export tests compare two implementations of one model: they keep the low-score, near-tied
# boxes out (tiny_model_opts scores every proposal, for the training tests).
EXPORT_TEST_OPTS = ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.01"]


def deformed_random_model(cfg, image_size=(128, 160), seed=0):
    """``build_model(cfg)`` in eval mode with random offset/mask branches and BatchNorm
    statistics taken from a random image of ``image_size``."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "offset" in name or "mask" in name:
                param.normal_(0.0, OFFSET_WEIGHT_STD)
            elif "objectness_logits" in name or "cls_score" in name:
                param.mul_(SCORE_WEIGHT_GAIN)
            elif "anchor_deltas" in name or "bbox_pred" in name:
                param.mul_(DELTA_WEIGHT_GAIN)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one batch sets the statistics
    image = torch.rand(3, *image_size, generator=torch.Generator().manual_seed(seed)) * 255
    model.train()
    with torch.no_grad():
        model.backbone(model.preprocess_image([{"image": image}]).tensor)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()
