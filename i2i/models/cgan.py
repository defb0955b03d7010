"""CGAN (Mirza & Osindero 2014, arXiv:1411.1784): G(z, y) and D(x, y), both given the class label."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS
from .base import StepContext
from .gan import LatentGAN


@MODELS.register("cgan")
class CGAN(LatentGAN):
    """Conditional GAN (Mirza & Osindero 2014): G(z, y); D(x, y) judges image-label pairs."""

    losses_required = ("adv",)

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        if cls.net_arg(recipe, "d", "conditioning") in (None, "none"):
            raise RecipeError("CGAN's D must see the label", file=file, key="nets.d.conditioning",
                              value=cls.net_arg(recipe, "d", "conditioning"), choices=["concat", "projection"])

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"], real_args=(batch["y"],),
                                               fake_args=(out["codes"]["y"],))
        ctx.update("d", loss)
        return {"d/adv": loss}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, out["fake"], fake_args=(out["codes"]["y"],), real=batch["real"],
                                               real_args=(batch["y"],))
        ctx.update("g", adv)
        return {"g/adv": adv}
