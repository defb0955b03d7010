"""Super-resolution discriminators that accept any input size: ESRGAN's VGG-style D (BasicSR's asserts 128 or
256 px; ours pools adaptively) and Real-ESRGAN's U-Net D with spectral norm. Inputs in [-1, 1]."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..layers import Norm, conv_bias, init_weights, norm_layer
from ..registry import NETS, SizeRules, config_value

DInit = Literal["default", "normal", "xavier", "kaiming", "orthogonal"]


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def _init(net: nn.Module, init: str) -> None:
    if init != "default":  # "default": PyTorch's own init, as BasicSR's discriminators use
        init_weights(net, init, 0.02)


@NETS.register("vgg_discriminator")
class VGGDiscriminator(nn.Module):
    """ESRGAN's VGG-style D: (B, in, H, W) -> (B, 1) logits, at any H, W >= min_size (not only 128/256).

    Each stage is a 3x3 stride-1 conv and a 4x4 stride-2 conv (channels base x 1, 2, 4, 8, 8 for 5 stages),
    LeakyReLU 0.2, norm after every conv but the first. Adaptive average pooling to ``pool`` x ``pool`` before
    the linear head (100 units, then one logit) removes BasicSR's fixed-size assert; at 128 px input with
    pool 4 it is exactly BasicSR's VGGStyleDiscriminator (the pooling is then the identity).
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "stages": 3}

    def __init__(self, in_channels: int = 3, base_channels: int = 64, stages: int = 5, norm: Norm = "batch",
                 pool: int = 4, hidden: int = 100, init: DInit = "default"):
        super().__init__()
        if stages < 1 or pool < 1 or hidden < 1:
            raise ValueError(f"stages, pool and hidden must be >= 1, got {stages}, {pool}, {hidden}")
        self.in_channels, self.stages = in_channels, stages
        bias = conv_bias(norm)
        layers: list[nn.Module] = []
        cin = in_channels
        for s in range(stages):
            c = base_channels * min(2 ** s, 8)
            first = s == 0
            layers += [nn.Conv2d(cin, c, 3, 1, 1, bias=bias or first)]
            if not first:
                layers.append(norm_layer(norm, c))
            layers += [_lrelu(), nn.Conv2d(c, c, 4, 2, 1, bias=bias), norm_layer(norm, c), _lrelu()]
            cin = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * pool * pool, hidden), _lrelu(), nn.Linear(hidden, 1))
        _init(self, init)

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return 1

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        # each 4x4 stride-2 conv floors n/2; one pixel must remain (two for instance norm statistics)
        stages = config_value(cls, kwargs, "stages")
        return 2 ** stages * (2 if config_value(cls, kwargs, "norm") == "instance" else 1)

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        side = max(size, 2 ** (self.stages + 1))
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


@NETS.register("unet_discriminator_sn")
class UNetDiscriminatorSN(SizeRules, nn.Module):
    """Real-ESRGAN's U-Net D with spectral norm (Wang et al. 2021, arXiv:2107.10833).

    (B, in, H, W) -> (B, 1, H, W) per-pixel logits; H and W divisible by 8. Three 4x4 stride-2 downsamplings,
    three bilinear x2 upsamplings + 3x3 convs with additive skips, two refining convs, one logit conv.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4}

    def __init__(self, in_channels: int = 3, base_channels: int = 64, skip_connection: bool = True,
                 init: DInit = "default"):
        super().__init__()
        self.in_channels, self.skip = in_channels, skip_connection
        c = base_channels
        self.conv0 = nn.Conv2d(in_channels, c, 3, 1, 1)
        self.downs = nn.ModuleList(nn.Conv2d(c * 2 ** i, c * 2 ** (i + 1), 4, 2, 1, bias=False) for i in range(3))
        self.ups = nn.ModuleList(nn.Conv2d(c * 2 ** (3 - i), c * 2 ** (2 - i), 3, 1, 1, bias=False)
                                 for i in range(3))
        self.refine = nn.ModuleList(nn.Conv2d(c, c, 3, 1, 1, bias=False) for _ in range(2))
        self.conv_out = nn.Conv2d(c, 1, 3, 1, 1)
        _init(self, init)
        for conv in (*self.downs, *self.ups, *self.refine):  # after init: the parametrization wraps the weight
            spectral_norm(conv)

    SIZE_MULTIPLE, MIN_SIZE = 8, 8

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        side = -(-max(size, 8) // 8) * 8
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (x.shape[-2] % 8 or x.shape[-1] % 8):
            raise ValueError(f"UNetDiscriminatorSN needs H and W divisible by 8, got {tuple(x.shape[-2:])}")
        act = F.leaky_relu
        skips = [act(self.conv0(x), 0.2)]
        for conv in self.downs:
            skips.append(act(conv(skips[-1]), 0.2))
        y = skips.pop()
        for conv in self.ups:
            y = act(conv(F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)), 0.2)
            skip = skips.pop()
            if self.skip:
                y = y + skip
        for conv in self.refine:
            y = act(conv(y), 0.2)
        return self.conv_out(y)
