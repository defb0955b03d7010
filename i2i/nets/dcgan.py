"""DCGAN generator and discriminators (Radford et al. 2016): label-conditioned, projection, ACGAN and InfoGAN heads."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..errors import RecipeError
from ..layers import Init, Norm, conv_bias, init_weights, norm_layer, upsample2x
from ..registry import NETS, config_value

SIZES = "sizes 4 * 2**k or 7 * 2**k with k >= 2 work: 16, 28, 32, 56, 64, 112, 128, 256, ..."
SIZE_CHOICES = [16, 28, 32, 56, 64, 112, 128, 224, 256, 512]


def plan(size: int) -> tuple[int, int] | None:
    """(s0, k) with size == s0 * 2**k, s0 in (4, 7) and k >= 2 (s0 = 7 for 28 px MNIST); None if unsupported."""
    for s0 in (4, 7):
        q, r = divmod(size, s0)
        if not r and q >= 4 and q & (q - 1) == 0:
            return s0, q.bit_length() - 1
    return None


def _plan_or_raise(name: str, size: int) -> tuple[int, int]:
    found = plan(size) if isinstance(size, int) else None
    if found is None:
        raise ValueError(f"{name} size {size} is unsupported; {SIZES}")
    return found


def _check_codes(cat_codes: list[int] | None, cont_codes: int, cont_logvar: bool = False) -> list[int]:
    cat_codes = list(cat_codes or [])
    if any(k < 2 for k in cat_codes) or cont_codes < 0:
        raise ValueError(f"categorical codes need >= 2 values each and cont_codes >= 0, got {cat_codes}, {cont_codes}")
    if cont_logvar and not cont_codes:
        raise ValueError("cont_logvar needs cont_codes > 0")
    return cat_codes


class LatentInput:
    """z [, label y, codes c] -> one input vector: shared by the generators that take noise (DCGAN, MLP).

    Sets the attributes the conditional models and sampling read: z_dim, num_classes, label_mode, cat_codes,
    cont_codes, code_dim, embed. Label modes: embedding / onehot are concatenated to z; multiply (PyTorch-GAN's
    ACGAN) makes z * embed(y), so the label cannot be used without z and G cannot drop z.
    """

    def init_latent(self, z_dim: int, num_classes: int, label_mode: str, embed_dim: int, cat_codes: list[int],
                    cont_codes: int, z_std: float = 1.0) -> int:
        """Set the latent attributes; returns the width of the vector ``latent`` makes. ``z_std``: G sees
        z_std * z for the z ~ N(0, I) every sampler draws (ClusterGAN's prior N(0, 0.1^2 I))."""
        if label_mode not in ("embedding", "onehot", "multiply"):
            raise ValueError(f"unknown label_mode '{label_mode}'; valid: embedding, onehot, multiply")
        if not z_std > 0:
            raise ValueError(f"z_std must be > 0, got {z_std}")
        self.z_dim, self.num_classes, self.label_mode, self.z_std = z_dim, num_classes, label_mode, z_std
        self.cat_codes, self.cont_codes = cat_codes, cont_codes
        self.code_dim = sum(cat_codes) + cont_codes
        dim = z_dim if label_mode == "multiply" else embed_dim
        self.embed = nn.Embedding(num_classes, dim) if num_classes and label_mode != "onehot" else None
        label_dim = 0 if not num_classes or label_mode == "multiply" else dim if self.embed is not None else num_classes
        return z_dim + label_dim + self.code_dim

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor | None, ...]:
        y = torch.randint(0, self.num_classes, (batch,)) if self.num_classes else None
        codes = [F.one_hot(torch.randint(0, k, (batch,)), k).float() for k in self.cat_codes]
        c = torch.cat(codes + [torch.rand(batch, self.cont_codes) * 2 - 1], 1) if self.code_dim else None
        return torch.randn(batch, self.z_dim), y, c

    def latent(self, z: torch.Tensor, y: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        """[z (or z * embed(y)) | label | codes], with shape checks that name the net."""
        name = type(self).__name__
        if not torch.jit.is_tracing() and (z.dim() != 2 or z.shape[1] != self.z_dim):
            raise ValueError(f"{name} needs z of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        parts = [z * self.z_std if self.z_std != 1.0 else z]
        if (y is None) != (self.num_classes == 0):
            raise ValueError(f"{name}(num_classes={self.num_classes}) needs y (B,) labels exactly when "
                             f"num_classes > 0; got y={'None' if y is None else tuple(y.shape)}")
        if y is not None and self.label_mode == "multiply":
            parts[0] = z * self.embed(y)
        elif y is not None:
            parts.append(self.embed(y) if self.embed is not None else F.one_hot(y, self.num_classes).to(z.dtype))
        if (c is None) != (self.code_dim == 0):
            raise ValueError(f"{name}(code_dim={self.code_dim}) needs codes c exactly when code_dim > 0; "
                             f"got c={'None' if c is None else tuple(c.shape)}")
        if c is not None:
            if not torch.jit.is_tracing() and (c.dim() != 2 or c.shape[1] != self.code_dim):
                raise ValueError(f"{name} needs c of shape (B, {self.code_dim}) (categorical codes one-hot, "
                                 f"then continuous codes), got {tuple(c.shape)}")
            parts.append(c.to(z.dtype))
        return torch.cat(parts, 1)


class _FixedSize(nn.Module):
    """Shared recipe checks of the DCGAN nets: one fixed image size, categorical codes with >= 2 values."""

    fixed_size: ClassVar[bool] = True  # takes only size x size images (translate resizes inputs to ``size``)

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return 1

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        return config_value(cls, kwargs, "size")

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        size = config_value(cls, cfg, "size")
        if plan(size) is None:
            raise RecipeError(f"unsupported {cls.__name__} size; {SIZES}", file=file, key=f"{key}.size", value=size,
                              choices=SIZE_CHOICES)
        cat_codes = config_value(cls, cfg, "cat_codes") or []
        if any(k < 2 for k in cat_codes):
            raise RecipeError("each categorical code needs at least 2 values", file=file, key=f"{key}.cat_codes",
                              value=cat_codes)
        if config_value(cls, cfg, "cont_logvar") and not config_value(cls, cfg, "cont_codes"):
            raise RecipeError("cont_logvar needs cont_codes > 0", file=file, key=f"{key}.cont_logvar", value=True)
        if config_value(cls, cfg, "conditioning") not in (None, "none") and not config_value(cls, cfg, "num_classes"):
            raise RecipeError("label conditioning needs num_classes > 0", file=file, key=f"{key}.num_classes",
                              value=config_value(cls, cfg, "num_classes"))


@NETS.register("dcgan_generator")
class DCGANGenerator(LatentInput, _FixedSize):
    """DCGAN G (Radford et al. 2016, arXiv:1511.06434): z (B, z) [, y (B,), c (B, codes)] -> (B, out, size, size)."""

    smoke_args: ClassVar[dict] = {"z_dim": 8, "base_channels": 8, "size": 32, "num_classes": 3, "cat_codes": [3],
                                  "cont_codes": 2}

    def __init__(self, z_dim: int = 100, num_classes: int = 0,
                 label_mode: Literal["embedding", "onehot", "multiply"] = "embedding", embed_dim: int = 50,
                 cat_codes: list[int] | None = None, cont_codes: int = 0, out_channels: int = 1,
                 size: int = 32, base_channels: int = 64, upsample: Literal["transposed", "resize"] = "transposed",
                 norm: Norm = "batch", init: Init = "normal", init_gain: float = 0.02, z_std: float = 1.0):
        super().__init__()
        s0, k = _plan_or_raise("DCGANGenerator", size)
        if label_mode not in ("embedding", "onehot", "multiply"):
            raise ValueError(f"unknown label_mode '{label_mode}'; valid: embedding, onehot, multiply")
        self.out_channels, self.size, self.s0 = out_channels, size, s0
        in_dim = self.init_latent(z_dim, num_classes, label_mode, embed_dim, _check_codes(cat_codes, cont_codes),
                                  cont_codes, z_std)
        bias, c = conv_bias(norm), base_channels * 2 ** (k - 1)
        self.project = nn.Linear(in_dim, c * s0 * s0, bias=bias)
        layers: list[nn.Module] = [norm_layer(norm, c), nn.ReLU(True)]
        for _ in range(k - 1):  # halve the channels while doubling the side; the k-th stage makes the image
            layers += [upsample2x(c, c // 2, upsample, bias), norm_layer(norm, c // 2), nn.ReLU(True)]
            c //= 2
        self.body = nn.Sequential(*layers, upsample2x(c, out_channels, upsample, True), nn.Tanh())
        init_weights(self, init, init_gain)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.project(self.latent(z, y, c))
        return self.body(x.view(x.shape[0], -1, self.s0, self.s0))


class _Trunk(_FixedSize):
    """Strided 4x4 convs + LeakyReLU 0.2 from (B, in, size, size) down to flattened (B, C * s0 * s0) features."""

    def _build_trunk(self, cin: int, size: int, base_channels: int, norm: str, sn: bool, dropout: float = 0.0) -> int:
        s0, k = _plan_or_raise(type(self).__name__, size)
        self.size, self.sn = size, sn
        layers: list[nn.Module] = []
        for i in range(k):  # no norm on the first layer (DCGAN)
            cout = base_channels * 2 ** i
            layers += [self._sn(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0 or conv_bias(norm)))]
            layers += [norm_layer(norm, cout)] if i else []
            layers += [nn.LeakyReLU(0.2, True)]
            layers += [nn.Dropout2d(dropout)] if dropout > 0 else []  # PyTorch-GAN's ACGAN D: keeps D from winning
            cin = cout
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        return cin * s0 * s0

    def _sn(self, m: nn.Module) -> nn.Module:
        return _spectral_norm(m) if self.sn else m

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"{type(self).__name__}(size={self.size}) needs {self.size}x{self.size} inputs, "
                             f"got {tuple(x.shape[-2:])}")
        return self.trunk(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv layer's activations, flattened (B, F): VAE-GAN measures reconstructions there."""
        return self._features(x)

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor | None, ...]:
        x = torch.rand(batch, self.in_channels, self.size, self.size) * 2 - 1
        return (x, torch.randint(0, self.num_classes, (batch,))) if getattr(self, "conditioning", "none") != "none" \
            else (x,)


@NETS.register("dcgan_discriminator")
class DCGANDiscriminator(_Trunk):
    """DCGAN D (Radford et al. 2016; projection: Miyato & Koyama 2018): (B, in, size, size) [, y (B,)] -> (B, 1)."""

    smoke_args: ClassVar[dict] = {"base_channels": 4, "size": 32, "num_classes": 3, "conditioning": "projection"}

    def __init__(self, in_channels: int = 1, size: int = 32, base_channels: int = 64, num_classes: int = 0,
                 conditioning: Literal["none", "concat", "projection"] = "none", norm: Norm = "batch",
                 spectral_norm: bool = False, dropout: float = 0.0, init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        if conditioning not in ("none", "concat", "projection"):
            raise ValueError(f"unknown conditioning '{conditioning}'; valid: none, concat, projection")
        if conditioning != "none" and num_classes < 1:
            raise ValueError(f"conditioning '{conditioning}' needs num_classes > 0")
        self.in_channels, self.num_classes, self.conditioning = in_channels, num_classes, conditioning
        extra = num_classes if conditioning == "concat" else 0
        feat = self._build_trunk(in_channels + extra, size, base_channels, norm, spectral_norm, dropout)
        self.linear = self._sn(nn.Linear(feat, 1))
        self.embed = nn.Embedding(num_classes, feat) if conditioning == "projection" else None
        init_weights(self, init, init_gain)
        if self.embed is not None:  # Glorot-uniform, as in Miyato & Koyama's code (N(0, 1) swamps the logit)
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if (y is None) != (self.conditioning == "none"):
            raise ValueError(f"DCGANDiscriminator(conditioning='{self.conditioning}') needs y (B,) labels exactly "
                             "when conditioned")
        if self.conditioning == "concat":
            onehot = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, onehot.expand(-1, -1, *x.shape[-2:])], 1)
        h = self._features(x)
        out = self.linear(h)
        return out + (self.embed(y) * h).sum(1, keepdim=True) if self.embed is not None else out


@NETS.register("aux_discriminator")
class AuxDiscriminator(_Trunk):
    """ACGAN (Odena et al. 2017) / InfoGAN (Chen et al. 2016) D: (B, in, size, size) -> dict of raw logit heads."""

    smoke_args: ClassVar[dict] = {"base_channels": 4, "size": 32, "num_classes": 3, "cat_codes": [3], "cont_codes": 2,
                                  "cont_logvar": True, "spectral_norm": True}
    q_hidden: ClassVar[int] = 128  # InfoGAN's Q: FC 128 - BN - LeakyReLU - FC

    def __init__(self, in_channels: int = 1, size: int = 32, base_channels: int = 64, num_classes: int = 0,
                 cat_codes: list[int] | None = None, cont_codes: int = 0, cont_logvar: bool = False,
                 norm: Norm = "batch", spectral_norm: bool = False, dropout: float = 0.0, init: Init = "normal",
                 init_gain: float = 0.02):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.cat_codes, self.cont_codes = _check_codes(cat_codes, cont_codes, cont_logvar), cont_codes
        self.cont_logvar = cont_logvar
        feat = self._build_trunk(in_channels, size, base_channels, norm, spectral_norm, dropout)
        self.adv = self._sn(nn.Linear(feat, 1))
        self.classify = self._sn(nn.Linear(feat, num_classes)) if num_classes else None
        q_out = sum(self.cat_codes) + cont_codes * (2 if cont_logvar else 1)
        self.q = nn.Sequential(
            self._sn(nn.Linear(feat, self.q_hidden, bias=norm != "batch")),
            nn.BatchNorm1d(self.q_hidden) if norm == "batch" else nn.Identity(),  # instance norm of a vector: none
            nn.LeakyReLU(0.2, True), self._sn(nn.Linear(self.q_hidden, q_out))) if q_out else None
        init_weights(self, init, init_gain)

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        h = self._features(x)
        out: dict[str, Any] = {"adv": self.adv(h)}
        if self.classify is not None:
            out["class"] = self.classify(h)
        if self.q is not None:
            q, n = self.q(h), sum(self.cat_codes)
            if self.cat_codes:
                out["cat"] = list(q[:, :n].split(self.cat_codes, 1))
            if self.cont_codes:
                out["cont_mu"] = q[:, n:n + self.cont_codes]
            if self.cont_logvar:
                out["cont_logvar"] = q[:, n + self.cont_codes:]
        return out
