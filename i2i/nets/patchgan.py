"""PatchGAN and 1x1 PixelGAN discriminators (Isola et al. 2017)."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..layers import Init, Norm, conv_bias, init_weights, norm_layer
from ..registry import NETS, SizeRules


@NETS.register("patchgan")
class PatchGAN(nn.Module):
    """PatchGAN (Isola et al. 2017, arXiv:1611.07004): (B, in, H, W) -> (B, 1, H', W') logits; 70x70 at layers=3.

    ``num_classes`` K > 0 adds StarGAN's domain-classification head (Choi et al. 2018, arXiv:1711.09020) beside the
    patch logits, on the same features: the output is then ``{"adv": (B, 1, H', W'), "class": (B, K)}`` (raw
    logits; a 4x4 conv averaged over the patches, so any input size works).
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "layers": 2}

    def __init__(self, in_channels: int = 3, base_channels: int = 64, layers: int = 3, norm: Norm = "batch",
                 init: Init = "normal", init_gain: float = 0.02, num_classes: int = 0):
        super().__init__()
        if layers < 1 or num_classes < 0:
            raise ValueError(f"layers must be >= 1 and num_classes >= 0, got {layers}, {num_classes}")
        self.in_channels, self.layers, self.num_classes = in_channels, layers, num_classes
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
        self.classify = nn.Conv2d(c, num_classes, 4, 1, 1) if num_classes else None
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

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.classify is None:
            return self.model(x)
        h = self.model[:-1](x)
        return {"adv": self.model[-1](h), "class": self.classify(h).mean((2, 3))}


@NETS.register("pixel_discriminator")
class PixelDiscriminator(SizeRules, nn.Module):
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

    SIZE_MULTIPLE, MIN_SIZE = 1, 1

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.in_channels, size, size) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@NETS.register("multiscale_patchgan")
class MultiScalePatchGAN(nn.Module):
    """PatchGANs on an image pyramid (BicycleGAN's D_NLayersMulti, pix2pixHD): (B, in, H, W) -> list of logit maps.

    Scale 0 sees the input, scale k the input average-pooled k times (3x3, stride 2, padding 1, padding not
    counted). ``shared=False`` (the reference) gives every scale its own PatchGAN; ``shared=True`` applies one
    PatchGAN at every scale. The maps are (B, 1, h_k, w_k), finest first.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "layers": 1, "num_scales": 2}

    def __init__(self, in_channels: int = 3, base_channels: int = 64, layers: int = 3, norm: Norm = "batch",
                 num_scales: int = 2, shared: bool = False, init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        self.in_channels, self.layers, self.num_scales, self.shared = in_channels, layers, num_scales, shared
        self.nets = nn.ModuleList(PatchGAN(in_channels, base_channels, layers, norm, init, init_gain)
                                  for _ in range(1 if shared else num_scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return 1

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        # the 3x3/2 pooling with padding 1 gives ceil(n / 2): k poolings give ceil(n / 2**k), which must reach
        # PatchGAN's minimum m at the coarsest scale, so n > (m - 1) * 2**k
        k = kwargs.get("num_scales", 2) - 1
        return (PatchGAN.min_size(layers=kwargs.get("layers", 3)) - 1) * 2 ** k + 1

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        side = max(size, self.min_size(layers=self.layers, num_scales=self.num_scales))
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        m = self.min_size(layers=self.layers, num_scales=self.num_scales)
        if not torch.jit.is_tracing() and min(x.shape[-2:]) < m:
            raise ValueError(f"multiscale_patchgan(layers={self.layers}, num_scales={self.num_scales}) needs H and "
                             f"W >= {m}, got {tuple(x.shape[-2:])}")
        out = []
        for k in range(self.num_scales):
            if k:
                x = self.downsample(x)
            out.append(self.nets[0 if self.shared else k](x))
        return out
