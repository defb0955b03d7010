"""pix2pix (Isola et al. 2017, arXiv:1611.07004): conditional GAN on cat(A, B) plus L1 to the ground truth."""
from __future__ import annotations

from typing import Any

import torch

from ..registry import MODELS
from .base import GANModel, StepContext

PAIRED_TASK = "paired_translation"  # export meta "task": `i2i eval` scores such exports on paired test data


@MODELS.register("pix2pix")
class Pix2Pix(GANModel):
    """Paired translation A -> B: G(real_a) = fake_b; D sees (real_a, real_b) and (real_a, fake_b)."""

    nets_required = ("g", "d")
    losses_required = ("adv", "l1")
    optim_groups = {"g": ("g",), "d": ("d",)}
    export = ("g",)
    order = ("d", "g")  # the reference updates D on the current fake, then G against the updated D
    directions = {"AtoB": "g"}
    scorer = "i2i.evaluation.paired_scoring:PairedScorer"

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"fake_b": self.nets["g"](batch["real_a"])}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        real_a = batch["real_a"]
        loss, _, _ = self.losses["adv"].d_loss(self.nets["d"], torch.cat([real_a, batch["real_b"]], 1),
                                               torch.cat([real_a, out["fake_b"]], 1))
        ctx.update("d", loss)
        return {"d/adv": loss}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        real_a = batch["real_a"]
        with ctx.frozen("d") as (d,):
            adv, _ = self.losses["adv"].g_loss(d, torch.cat([real_a, out["fake_b"]], 1),
                                               real=torch.cat([real_a, batch["real_b"]], 1))
        l1 = self.losses["l1"](out["fake_b"], batch["real_b"])
        ctx.update("g", adv + l1)
        return {"g/adv": adv, "g/l1": l1}

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [batch["real_a"], self.nets["g"](batch["real_a"]), batch["real_b"]]

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.nets["g"](batch["real_a"]), batch["real_b"]

    def export_info(self, dataset: Any) -> dict:
        return {"task": PAIRED_TASK}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        a, b = data_channels["real_a"], data_channels["real_b"]
        cls.check_channels(recipe, "g", "in_channels", a, f"data gives real_a with {a} channel(s)", file=file)
        cls.check_channels(recipe, "g", "out_channels", b, f"data gives real_b with {b} channel(s)", file=file)
        cls.check_channels(recipe, "d", "in_channels", a + b,
                           f"pix2pix feeds D cat(real_a, fake_b) = {a} + {b} channels", file=file)
        size = recipe["data"].get("size")
        cls.check_size(recipe, "g", size, file=file)
        cls.check_size(recipe, "d", size, file=file)
