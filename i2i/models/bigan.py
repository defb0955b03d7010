"""BiGAN / ALI (Donahue et al. 2016, arXiv:1605.09782; Dumoulin et al. 2016, arXiv:1606.00704): G and an encoder E
trained together against a D that judges (image, code) pairs.

D learns real pairs (x, E(x)) against generated pairs (G(z), z), z ~ N(0, I). G and E minimise D's objective with
the labels swapped (the pair from E called fake, the pair from G called real), which for the vanilla mode is
BiGAN's non-saturating loss (halved, as the vanilla D objective averages its two terms) and works for every
adversarial mode. At the optimum E inverts G, so E(x) is a
representation of x learned without labels: the usual measure is a linear probe on it. A deterministic E
(``variational: false``) is BiGAN's; a variational one, sampled with the reparameterisation trick, is ALI's.
"""
from __future__ import annotations

from typing import Any

import torch

from ..codes import sample_latent
from ..registry import MODELS
from .base import StepContext
from .encoding import EncoderGAN, decode, reparameterize
from .gan import _unwrap


@MODELS.register("bigan")
class BiGAN(EncoderGAN):
    """BiGAN / ALI: D(x, z) separates (x, E(x)) from (G(z), z); G and E learn together to fool it."""

    losses_required = ("adv",)
    optim_groups = {"g": ("g", "e"), "d": ("d",)}
    order = ("d", "g")

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        x, g = batch["real"], self.nets["g"]
        z = sample_latent(_unwrap(g), x.shape[0], x.device)["z"]
        return {"z": z, "fake": decode(g, z), "z_enc": reparameterize(*self.encode(x))}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"],
                                               real_args=(out["z_enc"].detach(),), fake_args=(out["z"],))
        ctx.update("d", loss)
        return {"d/adv": loss}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        adv = self.losses["adv"]
        with ctx.frozen("d") as (d,):
            generated, encoded = d(out["fake"], out["z"]), d(batch["real"], out["z_enc"])
        loss = adv.weight * adv.discriminator(generated, encoded)  # labels swapped: D's objective, inverted
        ctx.update("g", loss)
        return {"g/adv": loss}
