"""CycleGAN's ResNet generator (Zhu et al. 2017)."""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from ..layers import Init, Norm, conv_bias, init_weights, norm_layer
from ..registry import NETS, SizeRules

Padding = Literal["reflect", "replicate", "zeros"]


class ResnetBlock(nn.Module):
    """Two same-size 3x3 convs with an identity shortcut: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, norm: str, dropout: float, padding: str):
        super().__init__()
        bias = conv_bias(norm)
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding, bias=bias),
            norm_layer(norm, channels), nn.ReLU(True),
            *([nn.Dropout(dropout)] if dropout > 0 else []),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding, bias=bias),
            norm_layer(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _upsample(cin: int, cout: int, kind: str, padding: str, bias: bool) -> nn.Module:
    if kind == "transposed":
        return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias)
    if kind == "resize":  # nearest + conv avoids the checkerboard of overlapping transposed kernels
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding, bias=bias))
    raise ValueError(f"unknown upsample '{kind}'; valid: transposed, resize")


@NETS.register("resnet_generator")
class ResnetGenerator(SizeRules, nn.Module):
    """CycleGAN ResNet generator (Zhu et al. 2017, arXiv:1703.10593): (B, in, H, W) -> (B, out, H, W); H, W % 4 == 0.

    ``label_channels`` K > 0 makes it StarGAN's generator (Choi et al. 2018, arXiv:1711.09020): ``forward(x, c)``
    with a target label c (B, K) (one-hot domain or 0/1 attributes), replicated over H x W and concatenated to
    the image before the first conv. ``in_channels`` stays the image's channel count.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "blocks": 1}

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64, blocks: int = 9,
                 norm: Norm = "instance", upsample: Literal["transposed", "resize"] = "transposed",
                 dropout: float = 0.0, padding: Padding = "reflect", init: Init = "normal",
                 init_gain: float = 0.02, label_channels: int = 0):
        super().__init__()
        if blocks < 0 or label_channels < 0:
            raise ValueError(f"blocks and label_channels must be >= 0, got {blocks}, {label_channels}")
        self.in_channels, self.out_channels, self.label_channels = in_channels, out_channels, label_channels
        bias = conv_bias(norm)
        c = base_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels + label_channels, c, 7, padding=3, padding_mode=padding,
                                             bias=bias),
                                   norm_layer(norm, c), nn.ReLU(True)]
        for _ in range(2):  # the reference downsamples with zero padding whatever `padding` says
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(True)]
            c *= 2
        layers += [ResnetBlock(c, norm, dropout, padding) for _ in range(blocks)]
        for _ in range(2):
            layers += [_upsample(c, c // 2, upsample, padding, bias), norm_layer(norm, c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.Conv2d(c, out_channels, 7, padding=3, padding_mode=padding), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self, init, init_gain)

    # a 1x1 bottleneck breaks instance norm and reflect padding (both need more than one pixel)
    SIZE_MULTIPLE, MIN_SIZE = 4, 8

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        side = -(-max(size, 8) // 4) * 4
        x = torch.rand(batch, self.in_channels, side, side) * 2 - 1
        return (x, torch.eye(self.label_channels)[torch.arange(batch) % self.label_channels]) if self.label_channels \
            else (x,)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if not torch.jit.is_tracing() and (x.shape[-2] % 4 or x.shape[-1] % 4):
            raise ValueError(f"ResnetGenerator needs H and W divisible by 4, got {tuple(x.shape[-2:])}")
        if self.label_channels:
            if c is None or c.shape != (x.shape[0], self.label_channels):
                got = None if c is None else tuple(c.shape)
                raise ValueError(f"this generator takes a target label c of shape (B, {self.label_channels}) with "
                                 f"the image; got {got}")
            x = torch.cat([x, c.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])], 1)
        return self.model(x)
