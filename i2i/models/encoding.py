"""Shared parts of the GANs that learn an encoder E beside the generator G (AAE, BiGAN/ALI, VAE-GAN).

G is a noise-driven generator (``dcgan_generator``, ``mlp_generator``), so sampling, the health monitor and the
classifier's scores work as for the unconditional GAN; E maps an image to a code ``(mu, logvar)`` (``logvar``
None for a deterministic encoder). Both are exported: ``i2i translate`` reconstructs G(E(x)) through the
``reconstruct`` direction, ``i2i encode`` writes codes, ``i2i sample`` draws from G.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..errors import RecipeError
from .gan import LatentGAN


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
    """z = mu + sigma * eps for a variational encoder; mu itself for a deterministic one."""
    return mu if logvar is None else mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def decode(g, z: torch.Tensor) -> torch.Tensor:
    """G(z) for an unconditional noise generator (no labels, no codes)."""
    return g(z, None, None)


class EncoderGAN(LatentGAN):
    """Nets ``g`` (decoder / generator), ``e`` (encoder) and ``d``; exports G and E; scored by reconstruction
    error and a linear probe on E's codes besides the classifier's figures for G's samples."""

    nets_required = ("g", "e", "d")
    export = ("g", "e")
    directions: ClassVar[dict] = {"reconstruct": ("e", "g")}  # i2i translate: G(E(x)), E's mu passed on
    needs_classes = False
    scorer = "i2i.evaluation.encoder_scoring:EncoderScorer"
    variational: ClassVar[bool | None] = None  # True / False: E must (not) have a variance head; None: either

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.nets["e"](x)

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Rows: real images, their reconstructions G(E(x)), then samples of G from fixed noise."""
        x, g = batch["real"], self.nets["g"]
        rows = [x, decode(g, self.encode(x)[0])]
        gen = torch.Generator().manual_seed(0)
        for _ in range(4):
            rows.append(decode(g, torch.randn(x.shape[0], g.z_dim, generator=gen).to(x.device)))
        return rows

    def export_info(self, dataset: Any) -> dict:
        return {**super().export_info(dataset), "task": "encoding", "z_dim": int(self.nets["g"].z_dim)}

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {**super().export_contract(),
                "e": {"in_channels": "`i2i encode` and `i2i translate` feed it images of that many channels",
                      "size": "`i2i encode` and `i2i translate` resize images to that size for it",
                      "z_dim": "`i2i encode` writes codes of that size"}}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        c, size = data_channels["real"], recipe["data"].get("size", 32)
        cls.check_channels(recipe, "e", "in_channels", c, f"data gives images with {c} channel(s)", file=file)
        got = cls.net_arg(recipe, "e", "size")
        if got is not None and got != size:
            raise RecipeError(f"must equal data.size ({size})", file=file, key="nets.e.size", value=got)
        z = cls.net_arg(recipe, "g", "z_dim")
        for net in ("e", "d"):
            got = cls.net_arg(recipe, net, "z_dim")
            if (net == "e" or got is not None) and got != z:
                why = "E inverts G" if net == "e" else "D judges codes"
                raise RecipeError(f"must equal nets.g.z_dim ({z}): {why}", file=file, key=f"nets.{net}.z_dim",
                                  value=got)
        for arg in ("num_classes", "cat_codes", "cont_codes"):
            got = cls.net_arg(recipe, "g", arg)
            if got:
                raise RecipeError(f"model '{recipe['model']['type']}' encodes images to z alone: G takes no labels "
                                  "or codes", file=file, key=f"nets.g.{arg}", value=got)
        variational = cls.net_arg(recipe, "e", "variational")
        if cls.variational is not None and variational is not None and bool(variational) != cls.variational:
            need = "a variance head (variational: true)" if cls.variational else "a deterministic E (variational: " \
                "false)"
            raise RecipeError(f"model '{recipe['model']['type']}' needs {need}", file=file,
                              key="nets.e.variational", value=variational)
