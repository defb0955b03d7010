"""UNIT (Liu et al. 2017, arXiv:1703.00848): unpaired translation through a shared latent space."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS
from .base import GANModel, StepContext

ENCODERS, GENERATORS = ("enc_a", "enc_b", "enc_shared"), ("dec_shared", "dec_a", "dec_b")


@MODELS.register("unit")
class UNIT(GANModel):
    """Two VAE encoders whose last layers are shared (``enc_shared``), two generators whose first layers are shared
    (``dec_shared``), a discriminator per domain. The latent is N(mean, I): the encoders give the mean, and
    translation is decode_B(encode_A(x)) with the mean. Losses: adversarial per domain, KL of the latent,
    in-domain reconstruction, and the cycle's KL and reconstruction (paper weights 10 / 0.1 / 100 / 0.1 / 100)."""

    nets_required = (*ENCODERS, *GENERATORS, "d_a", "d_b")
    losses_required = ("adv", "kl", "recon", "kl_cycle", "cycle")
    optim_groups = {"g": (*ENCODERS, *GENERATORS), "d": ("d_a", "d_b")}
    export = (*ENCODERS, *GENERATORS)
    order = ("g", "d")
    directions = {"AtoB": ["enc_a", "enc_shared", "dec_shared", "dec_b"],
                  "BtoA": ["enc_b", "enc_shared", "dec_shared", "dec_a"]}
    scorer = "i2i.evaluation.domain_scoring:DomainScorer"

    def _encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        return self.nets["enc_shared"](self.nets[f"enc_{domain}"](x))

    def _decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        return self.nets[f"dec_{domain}"](self.nets["dec_shared"](z))

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mu_a, mu_b = self._encode(batch["real_a"], "a"), self._encode(batch["real_b"], "b")
        # the reparameterisation of N(mu, I): noise from the global RNG, which checkpoints restore
        z_a, z_b = mu_a + torch.randn_like(mu_a), mu_b + torch.randn_like(mu_b)
        fake_a, fake_b = self._decode(z_b, "a"), self._decode(z_a, "b")
        mu_ba, mu_ab = self._encode(fake_a, "a"), self._encode(fake_b, "b")
        return {"mu_a": mu_a, "mu_b": mu_b, "rec_a": self._decode(z_a, "a"), "rec_b": self._decode(z_b, "b"),
                "fake_a": fake_a, "fake_b": fake_b, "mu_ab": mu_ab, "mu_ba": mu_ba,
                "cyc_a": self._decode(mu_ab + torch.randn_like(mu_ab), "a"),
                "cyc_b": self._decode(mu_ba + torch.randn_like(mu_ba), "b")}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        real_a, real_b, adv, loss = batch["real_a"], batch["real_b"], self.losses["adv"], self.losses

        def kl(name: str, *mus: torch.Tensor) -> torch.Tensor:
            # KL(N(mu, I) || N(0, I)): a `kl` loss reads (mu, logvar = 0); `mse` to 0 is UNIT's code, mean(mu^2)
            return sum(loss[name](mu, torch.zeros_like(mu)) for mu in mus)

        with ctx.frozen("d_a", "d_b") as (d_a, d_b):
            loss_adv = (adv.g_loss(d_b, out["fake_b"], real=real_b)[0]
                        + adv.g_loss(d_a, out["fake_a"], real=real_a)[0])
        logs = {"g/adv": loss_adv, "g/kl": kl("kl", out["mu_a"], out["mu_b"]),
                "g/recon": loss["recon"](out["rec_a"], real_a) + loss["recon"](out["rec_b"], real_b),
                "g/kl_cycle": kl("kl_cycle", out["mu_ab"], out["mu_ba"]),
                "g/cycle": loss["cycle"](out["cyc_a"], real_a) + loss["cycle"](out["cyc_b"], real_b)}
        ctx.update("g", sum(logs.values()))
        return logs

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        adv = self.losses["adv"]
        loss_b = adv.d_loss(self.nets["d_b"], batch["real_b"], out["fake_b"].detach())[0]
        loss_a = adv.d_loss(self.nets["d_a"], batch["real_a"], out["fake_a"].detach())[0]
        ctx.update("d", loss_a + loss_b)
        return {"d/a": loss_a, "d/b": loss_b}

    def _translate(self, x: torch.Tensor, source: str, target: str) -> torch.Tensor:
        return self._decode(self._encode(x, source), target)

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """real A | A->B | A->B->A | real B | B->A | B->A->B, with the latent means (as translate runs)."""
        real_a, real_b = batch["real_a"], batch["real_b"]
        fake_b, fake_a = self._translate(real_a, "a", "b"), self._translate(real_b, "b", "a")
        return [real_a, fake_b, self._translate(fake_b, "b", "a"), real_b, fake_a, self._translate(fake_a, "a", "b")]

    @torch.no_grad()
    def health_samples(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self._translate(batch["real_a"], "a", "b"), batch["real_b"]

    def export_info(self, dataset: Any) -> dict:
        return {"task": "unpaired_translation", "domains": ["A", "B"]}

    @classmethod
    def export_contract(cls) -> dict[str, dict[str, str]]:
        return {chain[0]: {"in_channels": "`i2i translate` and tiling feed it images of that many channels"}
                for chain in cls.directions.values()}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        a, b = data_channels["real_a"], data_channels["real_b"]
        for net, arg, n, why in (("enc_a", "in_channels", a, "real_a"), ("dec_a", "out_channels", a, "real_a"),
                                 ("enc_b", "in_channels", b, "real_b"), ("dec_b", "out_channels", b, "real_b"),
                                 ("d_a", "in_channels", a, "real_a"), ("d_b", "in_channels", b, "real_b")):
            cls.check_channels(recipe, net, arg, n, f"data gives {why} with {n} channel(s)", file=file)
        # the latent's width: base_channels * 2**downsample (2**upsample in the decoders) for every part
        width = {}
        for net in (*ENCODERS, *GENERATORS):
            if recipe["nets"][net].get("type", "").startswith("unit_"):
                steps = "upsample" if net in ("dec_a", "dec_b") else "downsample"
                width[net] = cls.net_arg(recipe, net, "base_channels") * 2 ** cls.net_arg(recipe, net, steps)
        first = next(iter(width), None)
        for net, c in width.items():
            if c != width[first]:
                raise RecipeError(f"the latent is {width[first]} channels wide at nets.{first} but {c} here "
                                  "(base_channels * 2**downsample, or 2**upsample in the decoders)", file=file,
                                  key=f"nets.{net}.base_channels", value=cls.net_arg(recipe, net, "base_channels"))
        size = recipe["data"].get("size")
        for net in ("enc_a", "enc_b", "d_a", "d_b"):
            cls.check_size(recipe, net, size, file=file)
