"""The study's 4-layer CNN and its deformable twins (torch and dcn_det.layers only).

    conv1 3x3 stride 2  (40 -> 20)   regular
    conv2 3x3 stride 2  (20 -> 10)   regular
    conv3 3x3           (10 -> 10)   regular | DCNv1 | DCNv2
    conv4 3x3           (10 -> 10)   regular | DCNv1 | DCNv2
    global average pool, linear -> 10 classes

Each conv is followed by batch norm and ReLU. The deformable layers are the last two, at
the same stride (4), so their sampling locations compose into 9 x 9 = 81 image points per
output unit (the DCNv1 paper's figure; :func:`dcn_det.visualization.sampling_points`).
Their offset branches start at zero: at step 0 each twin computes what the plain CNN does
(DCNv2: with the mask at 0.5).
"""
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from dcn_det.layers import DeformConvWithOffset, ModulatedDeformConvWithOffset

VARIANTS = ("plain", "dcnv1", "dcnv2")
STRIDE = 4  # of conv3 / conv4
DEFORMABLE_LAYERS = ("conv3", "conv4")


def _conv(variant: str, cin: int, cout: int, stride: int = 1) -> nn.Module:
    if variant == "plain":
        return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
    layer = DeformConvWithOffset if variant == "dcnv1" else ModulatedDeformConvWithOffset
    return layer(cin, cout, 3, stride=stride, padding=1, bias=False)  # batch norm follows


class DigitCNN(nn.Module):
    """``DigitCNN(variant)`` with ``variant`` in ("plain", "dcnv1", "dcnv2"); input
    [N, 1, H, W] (H, W multiples of 4), output [N, num_classes] logits."""

    def __init__(self, variant: str = "plain", channels: Sequence[int] = (32, 64, 64, 64), num_classes: int = 10):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"DigitCNN: variant must be one of {VARIANTS}, got {variant!r}")
        if len(channels) != 4:
            raise ValueError(f"DigitCNN: channels must give 4 widths, got {tuple(channels)}")
        self.variant = variant
        c1, c2, c3, c4 = channels
        specs = [("conv1", "plain", 1, c1, 2), ("conv2", "plain", c1, c2, 2),
                 ("conv3", variant, c2, c3, 1), ("conv4", variant, c3, c4, 1)]
        for name, kind, cin, cout, stride in specs:
            self.add_module(name, _conv(kind, cin, cout, stride))
            self.add_module(name + "_bn", nn.BatchNorm2d(cout))
        self.fc = nn.Linear(c4, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for name in ("conv1", "conv2", "conv3", "conv4"):
            x = torch.relu(getattr(self, name + "_bn")(getattr(self, name)(x)))
        return self.fc(x.mean((2, 3)))

    def offset_parameters(self) -> List[nn.Parameter]:
        """The offset (and mask) branches' parameters (empty for the plain CNN)."""
        return [p for name in DEFORMABLE_LAYERS for p in getattr(getattr(self, name), "conv_offset", nn.Module()).parameters()]

    @torch.no_grad()
    def offset_fields(self, image: Tensor) -> List[Optional[Tensor]]:
        """The offsets of conv3 and conv4 for one image [1, 1, H, W]: each [18, h, w] as
        (dy, dx) per tap in feature cells, or None for a regular conv."""
        fields: List[Optional[Tensor]] = []
        x = image
        for name in ("conv1", "conv2", "conv3", "conv4"):
            conv = getattr(self, name)
            if name in DEFORMABLE_LAYERS:
                branch = getattr(conv, "conv_offset", None)
                fields.append(None if branch is None else branch(x)[0, :18].float())
            x = torch.relu(getattr(self, name + "_bn")(conv(x)))
        return fields
