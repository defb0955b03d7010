"""AAE (Makhzani et al. 2015, arXiv:1511.05644): an autoencoder whose codes a discriminator pushes toward a prior.

E(x) -> z (reparameterised from (mu, logvar), as PyTorch-GAN's AAE, or mu for a deterministic E), G(z) -> x.
G and E step together on ``pixel`` (L1 reconstruction, weight 0.999) + ``adv`` (codes judged as prior samples,
weight 0.001); D, a discriminator on code vectors, then learns prior samples z ~ N(0, I) against the (detached)
codes. Sampling G from the prior then gives images, and E's codes are the learned representation.
"""
from __future__ import annotations

from typing import Any

import torch

from ..registry import MODELS
from .base import StepContext
from .encoding import EncoderGAN, decode, reparameterize


@MODELS.register("aae")
class AAE(EncoderGAN):
    """Adversarial autoencoder: reconstruction + a code discriminator matching E's aggregate posterior to N(0, I)."""

    losses_required = ("adv", "pixel")
    optim_groups = {"g": ("e", "g"), "d": ("d",)}  # PyTorch-GAN: one Adam over encoder and decoder
    order = ("g", "d")  # the reference: the autoencoder first, then D on the same (detached) codes

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        mu, logvar = self.encode(batch["real"])
        z = reparameterize(mu, logvar)
        return {"z": z, "rec": decode(self.nets["g"], z)}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, out["z"], real=torch.randn_like(out["z"]))
        pixel = self.losses["pixel"](out["rec"], batch["real"])
        ctx.update("g", adv + pixel)
        return {"g/adv": adv, "g/pixel": pixel}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        prior = torch.randn_like(out["z"])
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], prior, out["z"])
        ctx.update("d", loss)
        return {"d/adv": loss}
