"""UNIT's split encoder-generator (Liu et al. 2017, arXiv:1703.00848): per-domain parts and the shared latent layers.

A translation is a chain of four nets, decode_B(shared_dec(shared_enc(encode_A(x)))): ``unit_encoder`` (per domain:
stem, downsampling, residual blocks) -> ``unit_shared`` (the encoders' shared last layers, giving the latent mean)
-> ``unit_shared`` (the generators' shared first layers) -> ``unit_decoder`` (per domain: residual blocks,
upsampling, the image). Each is its own net, so the shared layers get one set of weights, one optimizer entry and
one export file.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn

from ..layers import Init, Norm, conv_bias, init_weights, norm_layer, upsample2x
from ..registry import NETS, SizeRules
from .resnet import Padding, ResnetBlock


def _check(**positive: int) -> None:
    for name, value in positive.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


def _features(x: torch.Tensor, net: nn.Module) -> None:
    if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != net.in_channels):
        raise ValueError(f"{type(net).__name__}(in_channels={net.in_channels}) needs (B, {net.in_channels}, H, W), "
                         f"got {tuple(x.shape)}")


@NETS.register("unit_encoder")
class UNITEncoder(nn.Module):
    """UNIT's per-domain encoder: (B, in, H, W) -> (B, base * 2**downsample, H / 2**downsample, W / ...) features.

    A 7x7 reflect-padded conv, ``downsample`` 4x4 stride-2 convs (doubling the channels), ``blocks`` residual blocks.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "blocks": 1}

    def __init__(self, in_channels: int = 3, base_channels: int = 64, downsample: int = 2, blocks: int = 3,
                 norm: Norm = "instance", padding: Padding = "reflect", init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        _check(downsample=downsample, blocks=blocks)
        self.in_channels, self.downsample = in_channels, downsample
        bias, c = conv_bias(norm), base_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 7, padding=3, padding_mode=padding, bias=bias),
                                   norm_layer(norm, c), nn.LeakyReLU(0.2, True)]
        for _ in range(downsample):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(True)]
            c *= 2
        layers += [ResnetBlock(c, norm, 0.0, padding) for _ in range(blocks)]
        self.out_channels = c
        self.model = nn.Sequential(*layers)
        init_weights(self, init, init_gain)

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return 2 ** kwargs.get("downsample", 2)

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        return 2 * cls.size_multiple(**kwargs)  # reflect padding and instance norm need 2 pixels at the bottom

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        m = self.size_multiple(downsample=self.downsample)
        side = -(-max(size, 2 * m) // m) * m
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _features(x, self)
        m = 2 ** self.downsample
        if not torch.jit.is_tracing() and (x.shape[-2] % m or x.shape[-1] % m):
            raise ValueError(f"UNITEncoder(downsample={self.downsample}) needs H and W divisible by {m}, "
                             f"got {tuple(x.shape[-2:])}")
        return self.model(x)


@NETS.register("unit_shared")
class UNITShared(SizeRules, nn.Module):
    """UNIT's shared layers: ``blocks`` residual blocks on the latent, (B, C, h, w) -> (B, C, h, w), where
    C = base_channels * 2**downsample is the width the encoders give (the same two numbers as theirs).

    As the encoders' last layers their output is the latent mean (the latent has unit variance, as in the paper);
    as the generators' first layers they read the latent code.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "blocks": 1}

    def __init__(self, base_channels: int = 64, downsample: int = 2, blocks: int = 1, norm: Norm = "instance",
                 padding: Padding = "reflect", init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        _check(downsample=downsample, blocks=blocks)
        channels = base_channels * 2 ** downsample
        self.in_channels = self.out_channels = channels
        self.model = nn.Sequential(*(ResnetBlock(channels, norm, 0.0, padding) for _ in range(blocks)))
        init_weights(self, init, init_gain)

    SIZE_MULTIPLE, MIN_SIZE = 1, 2

    def example_inputs(self, batch: int = 2, size: int = 8) -> tuple[torch.Tensor, ...]:
        return (torch.randn(batch, self.in_channels, max(size // 4, 2), max(size // 4, 2)),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _features(x, self)
        return self.model(x)


@NETS.register("unit_decoder")
class UNITDecoder(SizeRules, nn.Module):
    """UNIT's per-domain generator tail: (B, base * 2**upsample, h, w) -> (B, out, h * 2**upsample, ...) in [-1, 1].

    ``blocks`` residual blocks, ``upsample`` x2 upsamplings (halving the channels), a 7x7 conv and tanh.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "blocks": 1}

    def __init__(self, out_channels: int = 3, base_channels: int = 64, upsample: int = 2, blocks: int = 3,
                 norm: Norm = "instance", upsample_mode: Literal["transposed", "resize"] = "transposed",
                 padding: Padding = "reflect", init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        _check(upsample=upsample, blocks=blocks)
        self.out_channels, self.upsample = out_channels, upsample
        c = base_channels * 2 ** upsample
        self.in_channels = c
        bias = conv_bias(norm)
        layers: list[nn.Module] = [ResnetBlock(c, norm, 0.0, padding) for _ in range(blocks)]
        for _ in range(upsample):
            layers += [upsample2x(c, c // 2, upsample_mode, bias), norm_layer(norm, c // 2), nn.LeakyReLU(0.2, True)]
            c //= 2
        layers += [nn.Conv2d(c, out_channels, 7, padding=3, padding_mode=padding), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self, init, init_gain)

    SIZE_MULTIPLE, MIN_SIZE = 1, 2

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        side = max(size // 2 ** self.upsample, 2)
        return (torch.randn(batch, self.in_channels, side, side),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _features(x, self)
        return self.model(x)
