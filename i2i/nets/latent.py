"""Nets around latent codes: image encoders to a code (AAE, BiGAN/ALI, VAE-GAN), a discriminator on code vectors
(AAE) and a joint (x, z) discriminator (BiGAN/ALI).

The encoders return ``(mu, logvar)``, as BicycleGAN's do; ``logvar`` is None unless ``variational`` (a
deterministic encoder, BiGAN's, has no variance head whose weights would never learn). Commands that run an
encoder alone (``i2i encode``, reconstruction through ``i2i translate``) take ``mu``.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..errors import RecipeError
from ..layers import Init, Norm, init_weights
from ..registry import NETS, config_value
from .dcgan import _Trunk
from .mlp import MLPNorm, _check_hidden, _MLPNet


class _CodeHeads(nn.Module):
    """(B, F) features -> (mu, logvar or None), each (B, z_dim)."""

    def __init__(self, features: int, z_dim: int, variational: bool):
        super().__init__()
        if z_dim < 1:
            raise ValueError(f"encoder z_dim must be >= 1, got {z_dim}")
        self.mu = nn.Linear(features, z_dim)
        self.logvar = nn.Linear(features, z_dim) if variational else None

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.mu(h), (self.logvar(h) if self.logvar is not None else None)


def _check_image(net: nn.Module, x: torch.Tensor) -> None:
    if not torch.jit.is_tracing() and tuple(x.shape[1:]) != (net.in_channels, net.size, net.size):
        raise ValueError(f"{type(net).__name__}(in_channels={net.in_channels}, size={net.size}) needs "
                         f"(B, {net.in_channels}, {net.size}, {net.size}) images, got {tuple(x.shape)}")


@NETS.register("mlp_encoder")
class MLPEncoder(_MLPNet):
    """AAE encoder (Makhzani et al. 2015; PyTorch-GAN's AAE): (B, in, size, size) -> (mu, logvar), each (B, z_dim).

    Flattened image -> Linear blocks (BatchNorm from the second block on, LeakyReLU 0.2) -> linear heads for mu and,
    when ``variational``, logvar (None otherwise). A fixed input size, like the MLP generator it inverts.
    """

    smoke_args: ClassVar[dict] = {"z_dim": 4, "hidden": [16, 8], "size": 8}

    def __init__(self, in_channels: int = 1, size: int = 32, z_dim: int = 10,
                 hidden: list[int] | tuple[int, ...] = (512, 512), variational: bool = True, norm: MLPNorm = "batch",
                 init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        hidden = _check_hidden("MLPEncoder", hidden)
        if norm not in ("batch", "none"):
            raise ValueError(f"MLPEncoder norm must be 'batch' or 'none', got '{norm}'")
        for arg, value in (("in_channels", in_channels), ("size", size), ("z_dim", z_dim)):
            if value < 1:
                raise ValueError(f"MLPEncoder {arg} must be >= 1, got {value}")
        self.in_channels, self.size, self.z_dim, self.variational = in_channels, size, z_dim, variational
        layers: list[nn.Module] = []
        cin = in_channels * size * size
        for i, width in enumerate(hidden):  # no norm on the first block (PyTorch-GAN's AAE)
            use_norm = norm == "batch" and i > 0
            layers += [nn.Linear(cin, width, bias=not use_norm)]
            layers += [nn.BatchNorm1d(width)] if use_norm else []
            layers += [nn.LeakyReLU(0.2, True)]
            cin = width
        self.body = nn.Sequential(*layers)
        self.heads = _CodeHeads(cin, z_dim, variational)
        init_weights(self, init, init_gain)

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.in_channels, self.size, self.size) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        _check_image(self, x)
        return self.heads(self.body(x.flatten(1)))


@NETS.register("dcgan_encoder")
class DCGANEncoder(_Trunk):
    """DCGAN-style encoder (BiGAN/ALI, VAE-GAN): (B, in, size, size) -> (mu, logvar), each (B, z_dim).

    DCGAN D's trunk (strided 4x4 convs, LeakyReLU 0.2, norm after the first) -> linear heads for mu and, when
    ``variational``, logvar (None otherwise). Sizes as the DCGAN nets: 16, 28, 32, 64, ...
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "size": 16, "z_dim": 4, "variational": True}

    def __init__(self, in_channels: int = 1, size: int = 32, z_dim: int = 100, base_channels: int = 64,
                 variational: bool = False, norm: Norm = "batch", spectral_norm: bool = False,
                 init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        self.in_channels, self.z_dim, self.variational = in_channels, z_dim, variational
        feat = self._build_trunk(in_channels, size, base_channels, norm, spectral_norm)
        self.heads = _CodeHeads(feat, z_dim, variational)
        init_weights(self, init, init_gain)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        _check_image(self, x)
        return self.heads(self._features(x))


@NETS.register("vector_discriminator")
class VectorDiscriminator(nn.Module):
    """D on code vectors (AAE, Makhzani et al. 2015; PyTorch-GAN's AAE): z (B, z_dim) -> (B, 1) logits.

    Linear + LeakyReLU 0.2 (+ Dropout) per hidden width, then one raw logit.
    """

    smoke_args: ClassVar[dict] = {"z_dim": 4, "hidden": [8, 8], "dropout": 0.2}

    def __init__(self, z_dim: int = 10, hidden: list[int] | tuple[int, ...] = (512, 256), dropout: float = 0.0,
                 spectral_norm: bool = False, init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        hidden = _check_hidden("VectorDiscriminator", hidden)
        if z_dim < 1 or not 0 <= dropout < 1:
            raise ValueError(f"VectorDiscriminator needs z_dim >= 1 and dropout in [0, 1), got {z_dim}, {dropout}")
        self.z_dim = z_dim
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        cin = z_dim
        for width in hidden:
            layers += [sn(nn.Linear(cin, width)), nn.LeakyReLU(0.2, True)]
            layers += [nn.Dropout(dropout)] if dropout > 0 else []
            cin = width
        self.body = nn.Sequential(*layers, sn(nn.Linear(cin, 1)))
        init_weights(self, init, init_gain)

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        hidden = config_value(cls, cfg, "hidden")
        try:
            _check_hidden(cls.__name__, hidden)
        except ValueError as exc:
            raise RecipeError(str(exc), file=file, key=f"{key}.hidden", value=hidden) from None

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        return (torch.randn(batch, self.z_dim),)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (z.dim() != 2 or z.shape[1] != self.z_dim):
            raise ValueError(f"VectorDiscriminator(z_dim={self.z_dim}) needs codes (B, {self.z_dim}), got "
                             f"{tuple(z.shape)}")
        return self.body(z)


@NETS.register("joint_discriminator")
class JointDiscriminator(_Trunk):
    """BiGAN/ALI D (Donahue et al. 2016; Dumoulin et al. 2016): (x (B, in, size, size), z (B, z_dim)) -> (B, 1).

    x goes through DCGAN D's trunk, z through Linear + LeakyReLU 0.2; the two feature vectors are concatenated,
    then Linear + LeakyReLU (+ Dropout: ALI uses 0.2 throughout its D) and one raw logit.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "size": 16, "z_dim": 4, "hidden": 8, "dropout": 0.2}

    def __init__(self, in_channels: int = 1, size: int = 32, z_dim: int = 100, base_channels: int = 64,
                 hidden: int = 512, norm: Norm = "batch", spectral_norm: bool = False, dropout: float = 0.2,
                 init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        if z_dim < 1 or hidden < 1 or not 0 <= dropout < 1:
            raise ValueError(f"JointDiscriminator needs z_dim, hidden >= 1 and dropout in [0, 1), got {z_dim}, "
                             f"{hidden}, {dropout}")
        self.in_channels, self.z_dim = in_channels, z_dim
        feat = self._build_trunk(in_channels, size, base_channels, norm, spectral_norm, dropout)
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        self.z_path = nn.Sequential(self._sn(nn.Linear(z_dim, hidden)), nn.LeakyReLU(0.2, True), *drop)
        self.joint = nn.Sequential(self._sn(nn.Linear(feat + hidden, hidden)), nn.LeakyReLU(0.2, True), *drop,
                                   self._sn(nn.Linear(hidden, 1)))
        init_weights(self, init, init_gain)

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.in_channels, self.size, self.size) * 2 - 1, torch.randn(batch, self.z_dim))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and (z.dim() != 2 or z.shape != (x.shape[0], self.z_dim)):
            raise ValueError(f"JointDiscriminator(z_dim={self.z_dim}) needs codes ({x.shape[0]}, {self.z_dim}) "
                             f"with the images, got {tuple(z.shape)}")
        return self.joint(torch.cat([self._features(x), self.z_path(z).to(x.dtype)], 1))

