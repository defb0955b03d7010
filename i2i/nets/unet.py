"""pix2pix's U-Net generator (Isola et al. 2017)."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn

from ..layers import Init, Norm, conv_bias, init_weights, norm_layer, upsample2x
from ..registry import NETS


@NETS.register("unet_generator")
class UNetGenerator(nn.Module):
    """pix2pix U-Net (Isola et al. 2017, arXiv:1611.07004): (B, in, H, W) -> (B, out, H, W); H, W % 2**depth == 0.

    With ``z_dim > 0`` it is BicycleGAN's generator (Zhu et al. 2017, arXiv:1711.11586): ``forward(x, z)`` takes a
    latent code z (B, z_dim), tiled over the image plane and concatenated to the input of the first down conv
    (``z_injection="input"``, the reference's G_Unet_add_input) or to the input of every down block, at that
    block's resolution (``"all"``, G_Unet_add_all; the decoder gets no z). Without z (``net(x)``) the code is all
    zeros, the mean of the N(0, I) prior. With ``z_dim == 0`` the net is exactly pix2pix's and takes no z.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "depth": 3}

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64, depth: int = 8,
                 norm: Norm = "batch", dropout: float = 0.5, dropout_blocks: int = 3,
                 upsample: Literal["transposed", "resize"] = "transposed", init: Init = "normal",
                 init_gain: float = 0.02, z_dim: int = 0, z_injection: Literal["input", "all"] = "input"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if z_dim < 0:
            raise ValueError(f"z_dim must be >= 0, got {z_dim}")
        if z_injection not in ("input", "all"):
            raise ValueError(f"unknown z_injection '{z_injection}'; valid: input, all")
        self.z_dim, self.z_injection = z_dim, z_injection
        if dropout_blocks < 0 or not 0 <= dropout < 1:
            raise ValueError(f"need dropout_blocks >= 0 and 0 <= dropout < 1, got {dropout_blocks}, {dropout}")
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        chans = [base_channels * min(2 ** i, 8) for i in range(depth)]
        bias = conv_bias(norm)
        # dropout (pix2pix's only noise) sits in the decoder levels right above the bottleneck
        dropped = min(dropout_blocks, depth - 2) if dropout > 0 else 0
        self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
        for i, c in enumerate(chans):
            innermost = i == depth - 1
            normed = 0 < i < depth - 1  # raw pixels in, and a 1x1 bottleneck at full depth: no norm there
            cin = (in_channels if i == 0 else chans[i - 1]) + (z_dim if i == 0 or z_injection == "all" else 0)
            down: list[nn.Module] = [nn.Conv2d(cin, c, 4, 2, 1, bias=bias if normed else True)]
            down += [norm_layer(norm, c)] if normed else []
            # the reference's in-place LeakyReLU also activates the skip features; keep that behaviour
            down += [] if innermost else [nn.LeakyReLU(0.2, True)]
            self.downs.append(nn.Sequential(*down))
            cout = out_channels if i == 0 else chans[i - 1]
            up: list[nn.Module] = [nn.ReLU(True), upsample2x(c if innermost else 2 * c, cout, upsample,
                                                            bias if i > 0 else True)]
            up += [norm_layer(norm, cout)] if i > 0 else [nn.Tanh()]
            up += [nn.Dropout(dropout)] if depth - 1 - dropped <= i < depth - 1 else []
            self.ups.append(nn.Sequential(*up))
        init_weights(self, init, init_gain)

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return 2 ** kwargs.get("depth", 8)

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        return cls.size_multiple(**kwargs)

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        m = self.size_multiple(depth=self.depth)
        side = -(-max(size, m) // m) * m
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        m = 2 ** self.depth
        checking = not torch.jit.is_tracing()
        if checking and (x.shape[-2] % m or x.shape[-1] % m):
            raise ValueError(f"UNetGenerator(depth={self.depth}) needs H and W divisible by {m}, "
                             f"got {tuple(x.shape[-2:])}")
        if self.z_dim == 0 and z is not None:
            raise ValueError("UNetGenerator(z_dim=0) takes no latent code z; build it with z_dim > 0")
        if self.z_dim > 0:
            if z is None:  # the prior's mean
                z = x.new_zeros(x.shape[0], self.z_dim)
            elif checking and (z.dim() != 2 or z.shape[0] != x.shape[0] or z.shape[1] != self.z_dim):
                raise ValueError(f"UNetGenerator(z_dim={self.z_dim}) needs z of shape ({x.shape[0]}, {self.z_dim}) "
                                 f"for a batch of {x.shape[0]} images, got {tuple(z.shape)}")
            z = z.to(x.dtype)[:, :, None, None]
        feats = []
        for i, down in enumerate(self.downs):
            if z is not None and (i == 0 or self.z_injection == "all"):
                x = torch.cat([x, z.expand(-1, -1, x.shape[-2], x.shape[-1])], 1)
            x = down(x)
            feats.append(x)
        for i in reversed(range(self.depth)):
            x = self.ups[i](x if i == self.depth - 1 else torch.cat([feats[i], x], 1))
        return x
