"""InfoGAN (Chen et al. 2016, arXiv:1606.03657): unsupervised latent codes that D's Q head reads back."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS
from .base import StepContext
from .gan import LatentGAN, _adv


@MODELS.register("infogan")
class InfoGAN(LatentGAN):
    """InfoGAN (Chen et al. 2016): unsupervised codes c; D's Q head recovers c from G(z, c) (MI lower bound)."""

    losses_required = ("adv", "info")
    needs_classes = False

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        adv, _, fake = self.losses["adv"].d_loss(self.nets["d"], batch["real"], out["fake"], logits=_adv)
        info = self.losses["info"](fake, out["codes"])  # Q learns to read the codes back from (detached) fakes
        ctx.update("d", adv + info)
        return {"d/adv": adv, "d/info": info}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            adv, pred = self.losses["adv"].g_loss(d, out["fake"], real=batch["real"], logits=_adv)
        info = self.losses["info"](pred, out["codes"])  # G makes the codes readable
        ctx.update("g", adv + info)
        return {"g/adv": adv, "g/info": info}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        for arg in ("cat_codes", "cont_codes"):
            g_val, d_val = cls.net_arg(recipe, "g", arg), cls.net_arg(recipe, "d", arg)
            if (g_val or None) != (d_val or None):
                raise RecipeError(f"must equal nets.g.{arg} ({g_val}): D's Q head reads back G's codes", file=file,
                                  key=f"nets.d.{arg}", value=d_val)
        if not cls.net_arg(recipe, "g", "cat_codes") and not cls.net_arg(recipe, "g", "cont_codes"):
            raise RecipeError("InfoGAN needs latent codes: set cat_codes (e.g. [10]) and/or cont_codes",
                              file=file, key="nets.g.cat_codes")
