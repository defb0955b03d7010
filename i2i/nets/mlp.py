"""Fully connected GAN nets (Goodfellow et al. 2014; PyTorch-GAN's GAN and CGAN): G(z[, y, c]) and D(x[, y])."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..errors import RecipeError
from ..layers import Init, init_weights
from ..registry import NETS, config_value
from .dcgan import LatentInput

MLPNorm = Literal["batch", "none"]  # instance norm of a vector has nothing to normalise over


def _check_hidden(name: str, hidden: Any) -> list[int]:
    if not isinstance(hidden, (list, tuple)) or not hidden or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ValueError(f"{name} hidden must be a non-empty list of positive layer widths, got {hidden!r}")
    return list(hidden)


def _check_codes(name: str, cat_codes: list[int] | None, cont_codes: int) -> list[int]:
    cat_codes = list(cat_codes or [])
    if any(k < 2 for k in cat_codes) or cont_codes < 0:
        raise ValueError(f"{name}: categorical codes need >= 2 values each and cont_codes >= 0, got {cat_codes}, "
                         f"{cont_codes}")
    return cat_codes


class _MLPNet(nn.Module):
    """Shared recipe checks: one fixed square image size (any size >= 1), layer widths, codes and conditioning."""

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
        if size < 1:
            raise RecipeError(f"{cls.__name__} size must be >= 1", file=file, key=f"{key}.size", value=size)
        hidden = config_value(cls, cfg, "hidden")
        try:
            _check_hidden(cls.__name__, hidden)
        except ValueError as exc:
            raise RecipeError(str(exc), file=file, key=f"{key}.hidden", value=hidden) from None
        cat_codes = config_value(cls, cfg, "cat_codes") or []
        if any(k < 2 for k in cat_codes):
            raise RecipeError("each categorical code needs at least 2 values", file=file, key=f"{key}.cat_codes",
                              value=cat_codes)
        if config_value(cls, cfg, "conditioning") not in (None, "none") and not config_value(cls, cfg, "num_classes"):
            raise RecipeError("label conditioning needs num_classes > 0", file=file, key=f"{key}.num_classes",
                              value=config_value(cls, cfg, "num_classes"))
        dropout = config_value(cls, cfg, "dropout")
        if dropout is not None and not 0 <= dropout < 1:
            raise RecipeError("dropout must be in [0, 1)", file=file, key=f"{key}.dropout", value=dropout)


@NETS.register("mlp_generator")
class MLPGenerator(LatentInput, _MLPNet):
    """MLP G (Goodfellow et al. 2014; CGAN: Mirza & Osindero 2014): z (B, z) [, y (B,), c (B, codes)] -> image.

    The same inputs and attributes as ``dcgan_generator``, so the conditional models and sampling code work
    unchanged: [z | label embedding | codes] -> Linear blocks (BatchNorm from the second block on, as in
    PyTorch-GAN, LeakyReLU 0.2) -> Linear to out_channels * size * size -> tanh -> (B, out_channels, size, size).
    """

    smoke_args: ClassVar[dict] = {"z_dim": 8, "hidden": [16, 32], "size": 16, "num_classes": 3, "cat_codes": [3],
                                  "cont_codes": 2}

    def __init__(self, z_dim: int = 100, num_classes: int = 0,
                 label_mode: Literal["embedding", "onehot", "multiply"] = "embedding", embed_dim: int = 50,
                 cat_codes: list[int] | None = None, cont_codes: int = 0, out_channels: int = 1, size: int = 32,
                 hidden: list[int] | tuple[int, ...] = (128, 256, 512, 1024), norm: MLPNorm = "batch",
                 init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        hidden = _check_hidden("MLPGenerator", hidden)
        if norm not in ("batch", "none"):
            raise ValueError(f"MLPGenerator norm must be 'batch' or 'none', got '{norm}'")
        for arg, value, low in (("z_dim", z_dim, 1), ("size", size, 1), ("out_channels", out_channels, 1),
                                ("num_classes", num_classes, 0), ("embed_dim", embed_dim, 1)):
            if value < low:
                raise ValueError(f"MLPGenerator {arg} must be >= {low}, got {value}")
        self.out_channels, self.size = out_channels, size
        in_dim = self.init_latent(z_dim, num_classes, label_mode, embed_dim,
                                  _check_codes("MLPGenerator", cat_codes, cont_codes), cont_codes)
        layers: list[nn.Module] = []
        cin = in_dim
        for i, width in enumerate(hidden):  # no norm on the first block (PyTorch-GAN's GAN / CGAN)
            use_norm = norm == "batch" and i > 0
            layers += [nn.Linear(cin, width, bias=not use_norm)]
            layers += [nn.BatchNorm1d(width)] if use_norm else []
            layers += [nn.LeakyReLU(0.2, True)]
            cin = width
        self.body = nn.Sequential(*layers, nn.Linear(cin, out_channels * size * size), nn.Tanh())
        init_weights(self, init, init_gain)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.latent(z, y, c)).view(z.shape[0], self.out_channels, self.size, self.size)


@NETS.register("mlp_discriminator")
class MLPDiscriminator(_MLPNet):
    """MLP D (Goodfellow et al. 2014; CGAN: Mirza & Osindero 2014): (B, in, size, size) [, y (B,)] -> (B, 1) logits.

    Flattened image [| label embedding ("concat", PyTorch-GAN's CGAN)] -> Linear + LeakyReLU 0.2 (+ Dropout)
    per hidden width -> one raw logit. "projection" (Miyato & Koyama 2018) adds <embed(y), h> to the logit.
    """

    smoke_args: ClassVar[dict] = {"hidden": [16, 8], "size": 16, "num_classes": 3, "conditioning": "concat",
                                  "dropout": 0.3}

    def __init__(self, in_channels: int = 1, size: int = 32, hidden: list[int] | tuple[int, ...] = (512, 256),
                 num_classes: int = 0, conditioning: Literal["none", "concat", "projection"] = "none",
                 embed_dim: int | None = None, dropout: float = 0.0, spectral_norm: bool = False,
                 init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        hidden = _check_hidden("MLPDiscriminator", hidden)
        if conditioning not in ("none", "concat", "projection"):
            raise ValueError(f"unknown conditioning '{conditioning}'; valid: none, concat, projection")
        if conditioning != "none" and num_classes < 1:
            raise ValueError(f"conditioning '{conditioning}' needs num_classes > 0")
        if not 0 <= dropout < 1:
            raise ValueError(f"MLPDiscriminator dropout must be in [0, 1), got {dropout}")
        for arg, value in (("size", size), ("in_channels", in_channels), ("embed_dim", embed_dim)):
            if value is not None and value < 1:
                raise ValueError(f"MLPDiscriminator {arg} must be >= 1, got {value}")
        self.in_channels, self.size, self.num_classes, self.conditioning = in_channels, size, num_classes, conditioning
        self.sn = spectral_norm
        # concat: a learned label embedding, num_classes wide by default (PyTorch-GAN's CGAN)
        label_dim = (embed_dim or num_classes) if conditioning == "concat" else 0
        self.label_embed = nn.Embedding(num_classes, label_dim) if label_dim else None
        layers: list[nn.Module] = []
        cin = in_channels * size * size + label_dim
        for width in hidden:
            layers += [self._sn(nn.Linear(cin, width)), nn.LeakyReLU(0.2, True)]
            layers += [nn.Dropout(dropout)] if dropout > 0 else []
            cin = width
        self.body = nn.Sequential(*layers)
        self.linear = self._sn(nn.Linear(cin, 1))
        self.embed = nn.Embedding(num_classes, cin) if conditioning == "projection" else None
        init_weights(self, init, init_gain)
        for emb in (self.embed, self.label_embed):
            if emb is not None:  # Glorot-uniform, as in Miyato & Koyama's code (N(0, 1) swamps the logit)
                nn.init.xavier_uniform_(emb.weight)

    def _sn(self, m: nn.Module) -> nn.Module:
        return _spectral_norm(m) if self.sn else m

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        x = torch.rand(batch, self.in_channels, self.size, self.size) * 2 - 1
        return (x, torch.randint(0, self.num_classes, (batch,))) if self.conditioning != "none" else (x,)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if not torch.jit.is_tracing() and tuple(x.shape[1:]) != (self.in_channels, self.size, self.size):
            raise ValueError(f"MLPDiscriminator(in_channels={self.in_channels}, size={self.size}) needs "
                             f"(B, {self.in_channels}, {self.size}, {self.size}) inputs, got {tuple(x.shape)}")
        if (y is None) != (self.conditioning == "none"):
            raise ValueError(f"MLPDiscriminator(conditioning='{self.conditioning}') needs y (B,) labels exactly "
                             "when conditioned")
        h = x.flatten(1)
        if self.label_embed is not None:
            h = torch.cat([h, self.label_embed(y).to(h.dtype)], 1)
        h = self.body(h)
        out = self.linear(h)
        return out + (self.embed(y) * h).sum(1, keepdim=True) if self.embed is not None else out
