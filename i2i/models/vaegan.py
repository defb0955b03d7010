"""VAE-GAN (Larsen et al. 2015, arXiv:1512.09300): a VAE whose reconstruction error is measured in a layer of the
discriminator, and whose decoder is also a GAN generator.

E(x) -> (mu, logvar), z = mu + sigma * eps; G(z) reconstructs x, G(z_p), z_p ~ N(0, I), samples. The paper's three
objectives, each net minimising its own:
- E: ``kl`` (KL(q(z|x) || N(0, I))) + ``feature`` (distance between D's features of x and of G(z), D's last
  conv layer standing for the paper's Dis_l);
- G: ``gamma`` * ``feature`` + ``adv`` (D should take both G(z) and G(z_p) for real);
- D: ``adv``, real x against G(z) and G(z_p).
G and E step together after one backward: E's terms reach E through a frozen copy of G, and G's terms see the
codes detached, so neither net gets the other's objective. An optional ``pixel`` loss adds a pixel-space
reconstruction term to both (public implementations do, for stability).
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS
from .base import StepContext
from .encoding import EncoderGAN, decode, reparameterize


@MODELS.register("vaegan")
class VAEGAN(EncoderGAN):
    """VAE-GAN: a VAE measured in D's feature space, KL prior, adversarial loss on reconstructions and samples."""

    losses_required = ("adv", "kl", "feature")
    losses_optional = ("pixel",)
    optim_groups = {"g": ("e", "g"), "d": ("d",)}
    order = ("d", "g")
    variational = True

    def __init__(self, nets: dict, losses: dict, gamma: float = 1.0):
        super().__init__(nets, losses)
        self.gamma = gamma

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        mu, logvar = self.encode(batch["real"])
        z = reparameterize(mu, logvar)
        # G's own pass sees the codes detached (E learns through the frozen copy in g_step); one batch holds
        # the reconstructions and the prior samples
        both = decode(self.nets["g"], torch.cat([z.detach(), torch.randn_like(z)]))
        rec, sampled = both.chunk(2)
        return {"mu": mu, "logvar": logvar, "z": z, "rec": rec, "fakes": both, "sampled": sampled}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        x = batch["real"]
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], torch.cat([x, x]), out["fakes"])
        ctx.update("d", loss)
        return {"d/adv": loss}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        x, feature, pixel = batch["real"], self.losses["feature"], self.losses.get("pixel")
        with ctx.frozen("d", "g") as (d, g):  # E's terms: gradients reach E alone
            target = d.features(x).detach()
            rec_e = decode(g, out["z"])
            feat_e = feature(d.features(rec_e), target)
        with ctx.frozen("d") as (d,):  # G's terms
            feat_g = feature(d.features(out["rec"]), target)
            adv, _ = self.losses["adv"].g_loss(d, out["fakes"], real=torch.cat([x, x]))
        kl = self.losses["kl"](out["mu"], out["logvar"])
        loss = kl + feat_e + self.gamma * feat_g + adv
        logs = {"g/adv": adv, "g/feature": feat_g, "e/feature": feat_e, "e/kl": kl}
        if pixel is not None:
            logs["g/pixel"] = pixel(out["rec"], x) + pixel(rec_e, x)
            loss = loss + logs["g/pixel"]
        ctx.update("g", loss)
        return logs

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        from ..registry import NETS
        d_type = recipe["nets"]["d"]["type"]
        if not hasattr(NETS.get(d_type), "features"):
            raise RecipeError("VAE-GAN measures reconstructions in D's features: D needs a features(x) method "
                              "(dcgan_discriminator has one)", file=file, key="nets.d.type", value=d_type)
        if cls.net_arg(recipe, "d", "conditioning") not in (None, "none"):
            raise RecipeError("VAE-GAN's D is unconditional", file=file, key="nets.d.conditioning",
                              value=cls.net_arg(recipe, "d", "conditioning"))
        gamma = (recipe["model"] or {}).get("gamma", 1.0) if isinstance(recipe["model"], dict) else 1.0
        if not isinstance(gamma, (int, float)) or gamma < 0:
            raise RecipeError("gamma weighs the feature reconstruction in G's loss: a number >= 0", file=file,
                              key="model.gamma", value=gamma)
