"""CycleGAN (Zhu et al. 2017, arXiv:1703.10593): two generators, two discriminators, cycle consistency."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import RecipeError
from ..layers import ImagePool
from ..registry import MODELS
from .base import GANModel, StepContext


@MODELS.register("cyclegan")
class CycleGAN(GANModel):
    """Unpaired translation A <-> B: G_ab and G_ba updated jointly, then D_a and D_b jointly from image pools."""

    nets_required = ("g_ab", "g_ba", "d_a", "d_b")
    losses_required = ("adv", "cycle")
    losses_optional = ("identity",)
    optim_groups = {"g": ("g_ab", "g_ba"), "d": ("d_a", "d_b")}
    export = ("g_ab", "g_ba")
    order = ("g", "d")
    directions = {"AtoB": "g_ab", "BtoA": "g_ba"}
    scorer = "i2i.evaluation.domain_scoring:DomainScorer"  # target-domain accuracy, Frechet distance, cycle L1

    def __init__(self, nets: dict[str, nn.Module], losses: dict[str, nn.Module], pool_size: int = 50):
        super().__init__(nets, losses)
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        g_ab, g_ba = self.nets["g_ab"], self.nets["g_ba"]
        fake_b = g_ab(batch["real_a"])
        fake_a = g_ba(batch["real_b"])
        return {"fake_b": fake_b, "rec_a": g_ba(fake_b), "fake_a": fake_a, "rec_b": g_ab(fake_a)}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        real_a, real_b, adv = batch["real_a"], batch["real_b"], self.losses["adv"]
        with ctx.frozen("d_a", "d_b") as (d_a, d_b):
            loss_adv = (adv.g_loss(d_b, out["fake_b"], real=real_b)[0]
                        + adv.g_loss(d_a, out["fake_a"], real=real_a)[0])
        cycle = self.losses["cycle"](out["rec_a"], real_a) + self.losses["cycle"](out["rec_b"], real_b)
        logs = {"g/adv": loss_adv, "g/cycle": cycle}
        total = loss_adv + cycle
        identity = self.losses.get("identity")
        if identity is not None and identity.weight > 0:
            # G_ab should leave a real B image unchanged (and G_ba a real A): keeps colours stable
            idt = identity(self.nets["g_ab"](real_b), real_b) + identity(self.nets["g_ba"](real_a), real_a)
            logs["g/identity"] = idt
            total = total + idt
        ctx.update("g", total)
        return logs

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        adv, d_a, d_b = self.losses["adv"], self.nets["d_a"], self.nets["d_b"]
        fake_b = self.pool_b.query(out["fake_b"].detach())
        fake_a = self.pool_a.query(out["fake_a"].detach())
        loss_b = adv.d_loss(d_b, batch["real_b"], fake_b)[0]
        loss_a = adv.d_loss(d_a, batch["real_a"], fake_a)[0]
        ctx.update("d", loss_a + loss_b)
        return {"d/a": loss_a, "d/b": loss_b}

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        g_ab, g_ba = self.nets["g_ab"], self.nets["g_ba"]
        fake_b, fake_a = g_ab(batch["real_a"]), g_ba(batch["real_b"])
        return [batch["real_a"], fake_b, g_ba(fake_b), batch["real_b"], fake_a, g_ab(fake_a)]

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.nets["g_ab"](batch["real_a"]), batch["real_b"]

    def state_objects(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a, "pool_b": self.pool_b}

    def export_info(self, dataset: Any) -> dict:
        return {"task": "unpaired_translation", "domains": ["A", "B"]}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        a, b = data_channels["real_a"], data_channels["real_b"]
        for net, arg, n, why in (("g_ab", "in_channels", a, "real_a"), ("g_ab", "out_channels", b, "real_b"),
                                 ("g_ba", "in_channels", b, "real_b"), ("g_ba", "out_channels", a, "real_a"),
                                 ("d_a", "in_channels", a, "real_a"), ("d_b", "in_channels", b, "real_b")):
            cls.check_channels(recipe, net, arg, n, f"data gives {why} with {n} channel(s)", file=file)
        identity = recipe["losses"].get("identity")
        if identity and identity.get("weight", 1.0) > 0 and a != b:
            raise RecipeError(f"the identity loss needs domains with equal channels (A has {a}, B has {b}); "
                              "set its weight to 0 or remove it", file=file, key="losses.identity.weight",
                              value=identity.get("weight", 1.0))
        size = recipe["data"].get("size")
        for net in cls.nets_required:
            cls.check_size(recipe, net, size, file=file)
