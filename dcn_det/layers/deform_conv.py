"""nn.Modules for deformable convolution (DCNv1) and modulated deformable convolution (DCNv2).

`DeformConv` / `ModulatedDeformConv` take the offset (and mask) as inputs, with the
constructor and parameter names of detectron2's layers of the same names, so detectron2
checkpoints load into them. `DeformConvWithOffset` / `ModulatedDeformConvWithOffset` own
their offset (and mask) branch: a regular conv with the same geometry, zero-initialised.
"""
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from dcn_det.ops import deform_conv2d
from dcn_det.ops.deform_conv import IntPair, border_code, int_pair


class DeformConv(nn.Module):
    """Deformable convolution (DCNv1); ``forward(x, offset)``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as nn.Conv2d.
        deformable_groups: number of offset groups G; input channels are split into G
            consecutive blocks that each get their own offsets.
        bias: learn an additive bias (detectron2's DeformConv has none; default False).
        norm: optional normalisation module applied to the output.
        activation: optional callable applied after ``norm``.
        border: the sampling rule at the map's border, ``"dcnv2"`` (default) or
            ``"dcnv1"`` (the original MXNet DCNv1 networks'); see
            :func:`dcn_det.ops.deform_conv2d`.

    Shapes: x ``[N, in_channels, H, W]``, offset ``[N, 2*G*kh*kw, Ho, Wo]``,
    output ``[N, out_channels, Ho, Wo]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        deformable_groups: int = 1,
        bias: bool = False,
        norm: Optional[nn.Module] = None,
        activation: Optional[Callable[[Tensor], Tensor]] = None,
        border: str = "dcnv2",
    ):
        super().__init__()
        border_code(f"{type(self).__name__}: border", border)
        if groups < 1 or in_channels % groups != 0 or out_channels % groups != 0:
            raise ValueError(
                f"{type(self).__name__}: groups ({groups}) must divide in_channels ({in_channels}) "
                f"and out_channels ({out_channels})"
            )
        if deformable_groups < 1 or in_channels % deformable_groups != 0:
            raise ValueError(
                f"{type(self).__name__}: deformable_groups ({deformable_groups}) must divide "
                f"in_channels ({in_channels})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = int_pair("kernel_size", kernel_size)
        self.stride = int_pair("stride", stride)
        self.padding = int_pair("padding", padding)
        self.dilation = int_pair("dilation", dilation)
        self.groups = groups
        self.deformable_groups = deformable_groups
        self.norm = norm
        self.activation = activation
        self.border = border

        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @property
    def offset_channels(self) -> int:
        """Channels of the offset input: 2 * deformable_groups * kh * kw."""
        return 2 * self.deformable_groups * self.kernel_size[0] * self.kernel_size[1]

    def _conv(self, x: Tensor, offset: Tensor, mask: Optional[Tensor]) -> Tensor:
        x = deform_conv2d(
            x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask, border=self.border
        )
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        return self._conv(x, offset, None)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, groups={self.groups}, "
            f"deformable_groups={self.deformable_groups}, bias={self.bias is not None}"
            + ("" if self.border == "dcnv2" else f", border={self.border!r}")
        )


class ModulatedDeformConv(DeformConv):
    """Modulated deformable convolution (DCNv2); ``forward(x, offset, mask)``.

    As :class:`DeformConv` (bias defaults to True, as in detectron2), plus
    mask ``[N, G*kh*kw, Ho, Wo]``: each sampled value is multiplied by its mask scalar.
    """

    def __init__(self, *args, bias: bool = True, **kwargs):
        super().__init__(*args, bias=bias, **kwargs)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        return self._conv(x, offset, mask)


def _make_offset_branch(layer: DeformConv, out_channels: int) -> nn.Conv2d:
    """A regular conv with the deformable layer's geometry; zero weights and bias so
    the deformable layer starts as a regular convolution."""
    conv = nn.Conv2d(
        layer.in_channels,
        out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        bias=True,
    )
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class DeformConvWithOffset(DeformConv):
    """DCNv1 layer that predicts its own offsets: ``forward(x)``.

    The offsets come from ``conv_offset``, a regular conv with the same kernel, stride,
    padding and dilation, zero-initialised: at step 0 this layer equals a regular conv.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conv_offset = _make_offset_branch(self, self.offset_channels)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return self._conv(x, self.conv_offset(x), None)


class ModulatedDeformConvWithOffset(ModulatedDeformConv):
    """DCNv2 layer that predicts its own offsets and mask: ``forward(x)``.

    ``conv_offset`` outputs 3*G*kh*kw channels: the first 2*G*kh*kw are the offsets, the
    last G*kh*kw go through a sigmoid to give the mask. It is zero-initialised, so at
    step 0 the offsets are 0 and the mask is 0.5 everywhere: a regular conv scaled by 1/2
    (the DCNv2 initialisation).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conv_offset = _make_offset_branch(self, self.offset_channels * 3 // 2)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        out = self.conv_offset(x)
        offset, mask_logits = out.split([self.offset_channels, self.offset_channels // 2], dim=1)
        return self._conv(x, offset, mask_logits.sigmoid())
