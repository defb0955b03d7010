"""CoGAN's weight-shared nets (Liu and Tuzel 2016, arXiv:1606.07536), each a part that a model chains.

The two generators share their first layers (``coupled_generator_trunk``: z -> high-level features) and keep their
own last layers (``coupled_generator_head``: features -> that domain's image); the two discriminators keep their
own first layers (``coupled_discriminator_head``: image -> features) and share their last ones
(``coupled_discriminator_trunk``: features -> logits). Each part is its own net: one set of weights for the shared
layers, one optimizer entry, one export file.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from ..layers import Init, Norm, conv_bias, init_weights, norm_layer, upsample2x
from ..registry import NETS, SizeRules


def _check_size(name: str, size: int) -> None:
    if size < 8 or size % 4:
        raise ValueError(f"{name} size must be a multiple of 4 and at least 8, got {size}")


def _check_input(net: nn.Module, x: torch.Tensor) -> None:
    if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != net.in_channels):
        raise ValueError(f"{type(net).__name__}(in_channels={net.in_channels}) needs (B, {net.in_channels}, H, W), "
                         f"got {tuple(x.shape)}")


@NETS.register("coupled_generator_trunk")
class CoupledGeneratorTrunk(SizeRules, nn.Module):
    """CoGAN's shared generator layers: z (B, z_dim) -> (B, 2 * base, size / 2, size / 2) features.

    A linear projection to (2 * base, size / 4, size / 4), batch norm, ReLU, one x2 upsampling block.
    """

    smoke_args: ClassVar[dict] = {"z_dim": 8, "base_channels": 4, "size": 16}

    def __init__(self, z_dim: int = 100, size: int = 32, base_channels: int = 64, norm: Norm = "batch",
                 upsample: Literal["transposed", "resize"] = "resize", init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        _check_size("CoupledGeneratorTrunk", size)
        self.z_dim, self.size, self.s0 = z_dim, size, size // 4
        c = 2 * base_channels
        self.out_channels = c
        bias = conv_bias(norm)
        self.project = nn.Linear(z_dim, c * self.s0 * self.s0, bias=bias)
        self.body = nn.Sequential(norm_layer(norm, c), nn.ReLU(True), upsample2x(c, c, upsample, bias),
                                  norm_layer(norm, c), nn.ReLU(True))
        init_weights(self, init, init_gain)

    SIZE_MULTIPLE, MIN_SIZE = 1, 8

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        return (torch.randn(batch, self.z_dim),)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (z.dim() != 2 or z.shape[1] != self.z_dim):
            raise ValueError(f"CoupledGeneratorTrunk needs z of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        x = self.project(z)
        return self.body(x.view(x.shape[0], -1, self.s0, self.s0))


@NETS.register("coupled_generator_head")
class CoupledGeneratorHead(SizeRules, nn.Module):
    """One domain's own generator layers: (B, 2 * base, h, w) features of the trunk with the same
    ``base_channels`` -> (B, out, 2h, 2w) image in [-1, 1]."""

    smoke_args: ClassVar[dict] = {"base_channels": 4}

    def __init__(self, out_channels: int = 1, base_channels: int = 64, norm: Norm = "batch",
                 upsample: Literal["transposed", "resize"] = "resize", init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        self.in_channels, self.out_channels = 2 * base_channels, out_channels
        c = base_channels
        self.model = nn.Sequential(upsample2x(2 * c, c, upsample, conv_bias(norm)), norm_layer(norm, c),
                                   nn.ReLU(True), nn.Conv2d(c, out_channels, 3, padding=1), nn.Tanh())
        init_weights(self, init, init_gain)

    SIZE_MULTIPLE, MIN_SIZE = 1, 1

    def example_inputs(self, batch: int = 2, size: int = 16) -> tuple[torch.Tensor, ...]:
        return (torch.randn(batch, self.in_channels, max(size // 2, 2), max(size // 2, 2)),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x)
        return self.model(x)


@NETS.register("coupled_discriminator_head")
class CoupledDiscriminatorHead(SizeRules, nn.Module):
    """One domain's own discriminator layers: (B, in, H, W) image -> (B, base, H / 2, W / 2) features.

    A 4x4 stride-2 conv and LeakyReLU 0.2 (no norm on the image, as in DCGAN)."""

    smoke_args: ClassVar[dict] = {"base_channels": 4}

    def __init__(self, in_channels: int = 1, base_channels: int = 64, init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, base_channels
        self.model = nn.Sequential(nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True))
        init_weights(self, init, init_gain)

    SIZE_MULTIPLE, MIN_SIZE = 2, 16  # with the shared trunk's two halvings: a 2x2 logit map at least

    def example_inputs(self, batch: int = 2, size: int = 16) -> tuple[torch.Tensor, ...]:
        side = max(size, 16)
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x)
        return self.model(x)


@NETS.register("coupled_discriminator_trunk")
class CoupledDiscriminatorTrunk(SizeRules, nn.Module):
    """The discriminators' shared layers: (B, base, h, w) features of the heads with the same ``base_channels`` ->
    (B, 1, h / 4, w / 4) patch logits: two 4x4 stride-2 convs (doubling the channels) with norm and LeakyReLU 0.2,
    then a 3x3 conv to one logit map.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4}

    def __init__(self, base_channels: int = 64, norm: Norm = "batch", init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        self.in_channels = c = base_channels
        bias = conv_bias(norm)
        self.model = nn.Sequential(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=bias), norm_layer(norm, 2 * c),
                                   nn.LeakyReLU(0.2, True), nn.Conv2d(2 * c, 4 * c, 4, 2, 1, bias=bias),
                                   norm_layer(norm, 4 * c), nn.LeakyReLU(0.2, True), nn.Conv2d(4 * c, 1, 3, 1, 1))
        init_weights(self, init, init_gain)

    SIZE_MULTIPLE, MIN_SIZE = 4, 8

    def example_inputs(self, batch: int = 2, size: int = 16) -> tuple[torch.Tensor, ...]:
        side = max(size // 2, 8)
        return (torch.randn(batch, self.in_channels, side, side),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x)
        return self.model(x)
