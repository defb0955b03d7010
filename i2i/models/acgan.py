"""ACGAN (Odena et al. 2017, arXiv:1610.09585): D also classifies real and generated images (auxiliary classifier)."""
from __future__ import annotations

from typing import Any

import torch

from ..registry import MODELS
from .base import StepContext
from .gan import LatentGAN, _adv


@MODELS.register("acgan")
class ACGAN(LatentGAN):
    """Auxiliary-classifier GAN: G(z, y); D has two heads, ``adv`` (real or generated) and ``class`` (which class).

    D minimises its adversarial loss plus the class loss on real images (their labels) and on generated ones (the
    labels G was asked for), averaged; G minimises its adversarial loss plus the class loss on its images, so that
    they are recognisable members of the requested class. ``d/class_acc`` logs D's class accuracy on both.
    Both nets need ``num_classes`` (the same count), as LatentGAN.validate checks.
    """

    losses_required = ("adv", "aux")

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        y_fake = out["codes"]["y"]
        adv, real, fake = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"], logits=_adv)
        aux = 0.5 * (self.losses["aux"](real["class"], batch["y"]) + self.losses["aux"](fake["class"], y_fake))
        ctx.update("d", adv + aux)
        accuracy = (torch.cat([real["class"], fake["class"]]).argmax(1) == torch.cat([batch["y"], y_fake])).float()
        return {"d/adv": adv, "d/aux": aux, "d/class_acc": accuracy.mean()}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            adv, pred = self.losses["adv"].g_loss(d, out["fake"], real=batch["real"], logits=_adv)
        aux = self.losses["aux"](pred["class"], out["codes"]["y"])
        ctx.update("g", adv + aux)
        return {"g/adv": adv, "g/aux": aux}
