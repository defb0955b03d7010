"""CoGAN (Liu and Tuzel 2016, arXiv:1606.07536): coupled GANs learn a joint distribution from two marginals."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS
from .base import GANModel, StepContext

GENERATORS, DISCRIMINATORS = ("g_shared", "g_a", "g_b"), ("d_a", "d_b", "d_shared")


@MODELS.register("cogan")
class CoGAN(GANModel):
    """Two GANs, one per domain, trained on unpaired images of each. The generators share their first layers
    (``g_shared``: z -> features; ``g_a``, ``g_b``: features -> image) and the discriminators their last layers
    (``d_a``, ``d_b``: image -> features; ``d_shared``: features -> logits), so one z gives a corresponding pair."""

    nets_required = (*GENERATORS, *DISCRIMINATORS)
    losses_required = ("adv",)
    optim_groups = {"g": GENERATORS, "d": DISCRIMINATORS}
    export = GENERATORS
    order = ("d", "g")
    coupled = {"A": ["g_shared", "g_a"], "B": ["g_shared", "g_b"]}  # one z drives every domain's chain
    scorer = "i2i.evaluation.domain_scoring:CoupledScorer"
    try_command = "i2i sample {run} --output {run}/pairs --per-class 10"  # the end-of-run summary's suggestion

    def _d(self, domain: str, nets: dict | None = None):
        nets = nets or self.nets
        return lambda x: nets["d_shared"](nets[f"d_{domain}"](x))

    @property
    def z_dim(self) -> int:
        return getattr(self.nets["g_shared"], "module", self.nets["g_shared"]).z_dim

    def _pair(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.nets["g_shared"](z)
        return self.nets["g_a"](h), self.nets["g_b"](h)

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real = batch["real_a"]
        z = torch.randn(real.shape[0], self.z_dim, device=real.device)  # global RNG: checkpoints restore it
        fake_a, fake_b = self._pair(z)
        return {"fake_a": fake_a, "fake_b": fake_b}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        adv = self.losses["adv"]
        loss_a = adv.d_loss(self._d("a"), batch["real_a"], out["fake_a"].detach())[0]
        loss_b = adv.d_loss(self._d("b"), batch["real_b"], out["fake_b"].detach())[0]
        ctx.update("d", loss_a + loss_b)
        return {"d/a": loss_a, "d/b": loss_b}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        adv = self.losses["adv"]
        with ctx.frozen(*DISCRIMINATORS) as frozen:
            nets = dict(zip(DISCRIMINATORS, frozen))
            loss_a = adv.g_loss(self._d("a", nets), out["fake_a"], real=batch["real_a"])[0]
            loss_b = adv.g_loss(self._d("b", nets), out["fake_b"], real=batch["real_b"])[0]
        ctx.update("g", loss_a + loss_b)
        return {"g/a": loss_a, "g/b": loss_b}

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Pairs side by side: 8 rows of 4 (A | B) pairs, each pair from one fixed z."""
        z = torch.randn(32, self.z_dim, generator=torch.Generator().manual_seed(0)).to(batch["real_a"].device)
        fake_a, fake_b = self._pair(z)
        return [t[i::4] for i in range(4) for t in (fake_a, fake_b)]

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        real = batch["real_a"]
        z = torch.randn(real.shape[0], self.z_dim, generator=torch.Generator().manual_seed(1)).to(real.device)
        return self._pair(z)[0], real

    def export_info(self, dataset: Any) -> dict:
        return {"task": "coupled_generation", "coupled": self.coupled, "domains": list(self.coupled)}

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {"g_shared": {"z_dim": "`i2i sample` and `i2i eval` draw noise of that size"},
                "g_a": {"out_channels": "`i2i eval` compares its samples with real images of that many channels"},
                "g_b": {"out_channels": "`i2i eval` compares its samples with real images of that many channels"}}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        a, b = data_channels["real_a"], data_channels["real_b"]
        for net, arg, n, why in (("g_a", "out_channels", a, "real_a"), ("g_b", "out_channels", b, "real_b"),
                                 ("d_a", "in_channels", a, "real_a"), ("d_b", "in_channels", b, "real_b")):
            cls.check_channels(recipe, net, arg, n, f"data gives {why} with {n} channel(s)", file=file)
        size = recipe["data"].get("size", 32)
        got = cls.net_arg(recipe, "g_shared", "size")
        if got is not None and got != size:
            raise RecipeError(f"must equal data.size ({size}): the generators make images of this size", file=file,
                              key="nets.g_shared.size", value=got)
        for net in ("d_a", "d_b"):
            cls.check_size(recipe, net, size, file=file)
        # the shared layers read what each domain's own layers give (and the other way round): one width per side
        for side in (GENERATORS, DISCRIMINATORS):
            if all(recipe["nets"][n]["type"].startswith("coupled_") for n in side):
                widths = {n: cls.net_arg(recipe, n, "base_channels") for n in side}
                if len(set(widths.values())) > 1:  # named on the widest net: a typo more often adds than drops digits
                    wide = max(widths, key=lambda n: widths[n] or 0)
                    other = next(n for n in side if widths[n] != widths[wide])
                    raise RecipeError(f"must equal nets.{other}.base_channels ({widths[other]}): the shared and the "
                                      "per-domain layers meet at that width", file=file,
                                      key=f"nets.{wide}.base_channels", value=widths[wide])
