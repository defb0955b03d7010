"""BicycleGAN (Zhu et al. 2017, arXiv:1711.11586): multimodal paired translation with a latent code z.

Two branches share G(A, z) and the encoder E(B) -> (mu, logvar):
- cVAE-GAN: z is encoded from the real B (reparameterised), G must rebuild that B (L1) and fool D; KL keeps
  E's codes near N(0, I);
- cLR-GAN: z is drawn from N(0, I), G's output must fool D2, and E must recover z from it (latent L1).

The batch is split in two: the first half feeds both branches' generator inputs (as in the reference, the
random-z branch also translates the first half's A), the second half's B gives D2 its real images. The latent
L1 updates G only: E runs frozen for that term (otherwise G and E collude to hide z in the image), while E
still learns from the reconstruction and KL terms. G and E step together after one backward; then D (and D2)
step on the same, detached, fakes. Without ``nets.d2`` one D judges both branches (the reference's use_same_D).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import RecipeError
from ..registry import MODELS
from .base import GANModel, StepContext
from .pix2pix import PAIRED_TASK


@MODELS.register("bicyclegan")
class BicycleGAN(GANModel):
    """Multimodal A -> B: G(A, z) with z from E(B) (cVAE-GAN) or N(0, I) (cLR-GAN); D and D2 per branch."""

    nets_required = ("g", "e", "d")
    nets_optional = ("d2",)
    losses_required = ("adv", "l1", "kl", "latent")
    optim_groups = {"g": ("g",), "e": ("e",), "d": ("d",), "d2": ("d2",)}
    export = ("g", "e")
    order = ("g", "d", "d2")  # the reference: G and E first, then the Ds on the same (detached) fakes
    critic_groups = ("d", "d2")
    directions = {"AtoB": "g"}
    scorer = "i2i.evaluation.paired_scoring:PairedScorer"

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {**super().export_contract(),
                "e": {"in_channels": "`i2i translate --style-from` encodes a B image of that many channels"}}

    def __init__(self, nets: dict[str, nn.Module], losses: dict[str, nn.Module], conditional_d: bool = False):
        super().__init__(nets, losses)
        self.conditional_d = conditional_d
        self.z_dim = int(getattr(nets["g"], "z_dim", 0))

    # -- pieces
    def encode(self, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, mu, logvar): z = mu + sigma * eps, the reparameterisation trick."""
        mu, logvar = self.nets["e"](b)
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar), mu, logvar

    def _d_input(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], 1) if self.conditional_d else b

    def _d2(self) -> str:
        return "d2" if "d2" in self.optim_groups else "d"

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        a, b = batch["real_a"], batch["real_b"]
        n = a.shape[0]
        if n < 2 or n % 2:
            raise RecipeError(f"BicycleGAN splits each batch in two halves and got a batch of {n}; use an even "
                              "batch size of at least 2", key="data.batch_size", value=n)
        half = n // 2
        a_enc, b_enc = a[:half], b[:half]
        z_enc, mu, logvar = self.encode(b_enc)
        z_random = torch.randn(half, self.z_dim, device=a.device, dtype=mu.dtype)
        g = self.nets["g"]
        return {"a_enc": a_enc, "b_enc": b_enc, "b_random": b[half:], "a_random": a[half:], "mu": mu,
                "logvar": logvar, "z_random": z_random, "fake_enc": g(a_enc, z_enc), "fake_random": g(a_enc, z_random)}

    # -- updates
    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        adv = self.losses["adv"]
        a, d2 = out["a_enc"], self._d2()
        with ctx.frozen("d", d2) as (d, d_random):
            gan = adv.g_loss(d, self._d_input(a, out["fake_enc"]), real=self._d_input(a, out["b_enc"]))[0]
            gan2 = adv.g_loss(d_random, self._d_input(a, out["fake_random"]),
                              real=self._d_input(out["a_random"], out["b_random"]))[0]
        kl = self.losses["kl"](out["mu"], out["logvar"])
        l1 = self.losses["l1"](out["fake_enc"], out["b_enc"])
        with ctx.frozen("e") as (e,):  # the latent term reaches G through E's input, never E's weights
            mu2, _ = e(out["fake_random"])
        latent = self.losses["latent"](mu2, out["z_random"])
        ctx.update(("g", "e"), gan + gan2 + kl + l1 + latent)
        return {"g/adv": gan, "g/adv2": gan2, "g/l1": l1, "e/kl": kl, "g/latent": latent}

    def _d_losses(self, d: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor,
                  fake_b: torch.Tensor) -> torch.Tensor:
        return self.losses["adv"].d_loss(d, self._d_input(real_a, real_b), self._d_input(fake_a, fake_b.detach()))[0]

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        loss = self._d_losses(self.nets["d"], out["a_enc"], out["b_enc"], out["a_enc"], out["fake_enc"])
        logs = {"d/adv": loss}
        if "d2" not in self.optim_groups:  # one D for both branches
            loss2 = self._d_losses(self.nets["d"], out["a_random"], out["b_random"], out["a_enc"], out["fake_random"])
            logs["d/adv2"] = loss2
            loss = loss + loss2
        ctx.update("d", loss)
        return logs

    def d2_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
                ctx: StepContext) -> dict[str, torch.Tensor]:
        loss = self._d_losses(self.nets["d2"], out["a_random"], out["b_random"], out["a_enc"], out["fake_random"])
        ctx.update("d2", loss)
        return {"d2/adv": loss}

    # -- samples
    def _fixed_z(self, n: int, device: torch.device) -> torch.Tensor:
        gen = torch.Generator().manual_seed(0)  # the same codes at every sample step: the grid is comparable
        return torch.randn(n, self.z_dim, generator=gen).to(device)

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        a, b, g = batch["real_a"], batch["real_b"], self.nets["g"]
        mu, _ = self.nets["e"](b)
        rows = [a, b, g(a, mu)]
        for z in self._fixed_z(3, a.device):
            rows.append(g(a, z.expand(a.shape[0], -1)))
        return rows

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        a = batch["real_a"]
        # a private generator: the monitor's draws must not move the training RNG (resume equality)
        z = torch.randn(a.shape[0], self.z_dim, generator=torch.Generator().manual_seed(1)).to(a.device)
        return self.nets["g"](a, z), batch["real_b"]

    def export_info(self, dataset: Any) -> dict:
        return {"task": PAIRED_TASK, "z_dim": self.z_dim}

    # -- recipe checks
    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        a, b = data_channels["real_a"], data_channels["real_b"]
        batch = recipe["data"].get("batch_size")
        if isinstance(batch, int) and (batch < 2 or batch % 2):
            raise RecipeError("BicycleGAN splits each batch into a cVAE-GAN half and a cLR-GAN half: the batch size "
                              f"must be even and at least 2 (the reference uses 2); use {max(2, batch + 1)}",
                              file=file, key="data.batch_size", value=batch)
        z_g, z_e = cls.net_arg(recipe, "g", "z_dim"), cls.net_arg(recipe, "e", "z_dim")
        if not isinstance(z_g, int) or isinstance(z_g, bool) or z_g < 1:
            raise RecipeError("BicycleGAN's generator needs a latent code: set a positive z_dim (the reference "
                              "uses 8) on a generator that takes one (unet_generator)", file=file,
                              key="nets.g.z_dim", value=z_g)
        if z_e != z_g:
            raise RecipeError(f"the encoder must give codes of the generator's size (nets.g.z_dim = {z_g})",
                              file=file, key="nets.e.z_dim", value=z_e)
        model = recipe["model"] if isinstance(recipe["model"], dict) else {}
        conditional = bool(model.get("conditional_d", False))
        d_in = a + b if conditional else b
        why = (f"conditional_d feeds D cat(A, B) = {a} + {b} channels" if conditional else
               f"D judges B images alone ({b} channel(s)); set model.conditional_d: true to show it A too")
        cls.check_channels(recipe, "g", "in_channels", a, f"data gives real_a with {a} channel(s)", file=file)
        cls.check_channels(recipe, "g", "out_channels", b, f"data gives real_b with {b} channel(s)", file=file)
        cls.check_channels(recipe, "e", "in_channels", b, f"E encodes real_b ({b} channel(s))", file=file)
        for d in ("d", "d2"):
            if d in recipe["nets"]:
                cls.check_channels(recipe, d, "in_channels", d_in, why, file=file)
        size = recipe["data"].get("size")
        for net in ("g", "e", "d", "d2"):
            if net in recipe["nets"]:
                cls.check_size(recipe, net, size, file=file)
