"""ESRGAN's RRDBNet super-resolution generator (Wang et al. 2018, arXiv:1809.00219). Its discriminators are in
``sr_discriminators.py``.

Value range: like every i2i net, these read images in [-1, 1]. ``rrdb_net`` is *not* tanh-bounded (ESRGAN
works in image space and learns a near-identity mapping plus detail); its output lives on the same [-1, 1]
scale and may overshoot slightly while training. Writers (``from_tensor``) and the SR metrics clamp to [-1, 1].
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RecipeError
from ..registry import NETS, config_value

SCALES = (1, 2, 4, 8)


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def _scaled_kaiming(module: nn.Module, scale: float) -> None:
    """ESRGAN's body init: kaiming-normal (fan_in) weights multiplied by ``scale``, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            m.weight.data.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier output; residual scaled by 0.2."""

    def __init__(self, features: int, growth: int, init_scale: float):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(features + i * growth, growth if i < 4 else features, 3, padding=1) for i in range(5))
        self.act = _lrelu()
        _scaled_kaiming(self, init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for conv in self.convs[:-1]:
            seen.append(self.act(conv(torch.cat(seen, 1))))
        return x + 0.2 * self.convs[-1](torch.cat(seen, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks and an outer residual scaled by 0.2."""

    def __init__(self, features: int, growth: int, init_scale: float):
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualDenseBlock(features, growth, init_scale) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.blocks(x)


def _unshuffle(scale: int) -> int:
    """Scales 1 and 2 pixel-unshuffle the input (by 4 and 2) so the body always upsamples at least x4."""
    return 4 // scale if scale < 4 else 1


@NETS.register("rrdb_net")
class RRDBNet(nn.Module):
    """ESRGAN generator (Wang et al. 2018, arXiv:1809.00219): (B, in, h, w) -> (B, out, h*scale, w*scale).

    No BatchNorm, LeakyReLU 0.2, dense-block and RRDB residuals scaled by 0.2, body convs kaiming-init x0.1,
    nearest x2 + 3x3 conv upsampling stages. Scale 1 and 2 first pixel-unshuffle the input by 4 and 2 (as in
    Real-ESRGAN), so h and w must then be divisible by 4 and 2. Output is unbounded, on the [-1, 1] scale.
    """

    smoke_args: ClassVar[dict] = {"features": 8, "blocks": 1, "growth": 4, "scale": 4}

    def __init__(self, in_channels: int = 3, out_channels: int = 3, features: int = 64, blocks: int = 23,
                 growth: int = 32, scale: Literal[1, 2, 4, 8] = 4, init_scale: float = 0.1):
        super().__init__()
        if isinstance(scale, bool) or scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if blocks < 1 or features < 1 or growth < 1:
            raise ValueError(f"features, blocks and growth must be >= 1, got {features}, {blocks}, {growth}")
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.unshuffle = _unshuffle(scale)
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle ** 2, features, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(features, growth, init_scale) for _ in range(blocks)))
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        stages = (scale * self.unshuffle).bit_length() - 1  # log2 of the body's upsampling: 2 or 3
        self.ups = nn.ModuleList(nn.Conv2d(features, features, 3, padding=1) for _ in range(stages))
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, padding=1)
        self.act = _lrelu()

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        scale = config_value(cls, cfg, "scale")
        if isinstance(scale, bool) or scale not in SCALES:
            raise RecipeError("unsupported RRDBNet scale", file=file, key=f"{key}.scale", value=scale, choices=SCALES)
        for name in ("features", "blocks", "growth"):
            value = config_value(cls, cfg, name)
            if isinstance(value, int) and value < 1:
                raise RecipeError("must be >= 1", file=file, key=f"{key}.{name}", value=value)

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        """Input (LR) sides must be divisible by this: 4 for scale 1, 2 for scale 2, else 1."""
        scale = config_value(cls, kwargs, "scale")
        return _unshuffle(scale) if scale in SCALES else 1

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        return cls.size_multiple(**kwargs)

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        m = self.unshuffle
        side = -(-max(size // 4, m) // m) * m  # an LR input: the output is ``scale`` times larger
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            if not torch.jit.is_tracing() and (x.shape[-2] % self.unshuffle or x.shape[-1] % self.unshuffle):
                raise ValueError(f"RRDBNet with scale {self.scale} needs H and W divisible by {self.unshuffle}, "
                                 f"got {tuple(x.shape[-2:])}")
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in self.ups:
            feat = self.act(conv(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.act(self.conv_hr(feat)))
