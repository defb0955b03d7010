"""PatchGAN and 1x1 PixelGAN discriminators (Isola et al. 2017)."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..layers import Init, Norm, conv_bias, init_weights, norm_layer
from ..registry import NETS


@NETS.register("patchgan")
class PatchGAN(nn.Module):
    """PatchGAN (Isola et al. 2017, arXiv:1611.07004): (B, in, H, W) -> (B, 1, H', W') logits; 70x70 at layers=3."""

    smoke_args: ClassVar[dict] = {"base_channels": 4, "layers": 2}

    def __init__(self, in_channels: int = 3, base_channels: int = 64, layers: int = 3, norm: Norm = "batch",
                 init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.in_channels, self.layers = in_channels, layers
        bias = conv_bias(norm)
        model: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = base_channels
        for n in range(1, layers + 1):  # n == layers is the extra stride-1 conv before the logits
            c_next = base_channels * min(2 ** n, 8)
            model += [nn.Conv2d(c, c_next, 4, 2 if n < layers else 1, 1, bias=bias), norm_layer(norm, c_next),
                      nn.LeakyReLU(0.2, True)]
            c = c_next
        model.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.model = nn.Sequential(*model)
        init_weights(self, init, init_gain)

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return 1

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        # each stride-2 conv floors n/2; the two stride-1 4x4 convs then take 2 pixels: need 3 after them
        return 3 * 2 ** kwargs.get("layers", 3)

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        side = max(size, self.min_size(layers=self.layers))
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@NETS.register("pixel_discriminator")
class PixelDiscriminator(nn.Module):
    """1x1 PixelGAN (Isola et al. 2017, arXiv:1611.07004): (B, in, H, W) -> (B, 1, H, W) per-pixel logits."""

    smoke_args: ClassVar[dict] = {"base_channels": 4}

    def __init__(self, in_channels: int = 3, base_channels: int = 64, norm: Norm = "batch", init: Init = "normal",
                 init_gain: float = 0.02):
        super().__init__()
        self.in_channels = in_channels
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, base_channels, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(base_channels, 2 * base_channels, 1, bias=conv_bias(norm)), norm_layer(norm, 2 * base_channels),
            nn.LeakyReLU(0.2, True), nn.Conv2d(2 * base_channels, 1, 1))
        init_weights(self, init, init_gain)

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return 1

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        return 1

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.in_channels, size, size) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
