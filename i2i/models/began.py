"""BEGAN (Berthelot et al. 2017, arXiv:1703.10717): D is an autoencoder, L(v) = |v - D(v)|; an equilibrium term
k_t, kept by proportional control, balances how hard D pushes the fakes' reconstruction error up."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import RecipeError
from ..registry import MODELS
from .base import StepContext
from .gan import GAN, _unwrap


def reconstruction_error(d: Any, v: torch.Tensor) -> torch.Tensor:
    """L(v) = mean |v - D(v)| (pixelwise L1, eta = 1) of an autoencoder D returning (reconstruction, embedding)."""
    return (d(v)[0] - v).abs().mean()


def equilibrium_step(k: torch.Tensor, loss_real: torch.Tensor, loss_fake: torch.Tensor, gamma: float,
                     lambda_k: float) -> torch.Tensor:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)."""
    return (k + lambda_k * (gamma * loss_real - loss_fake)).clamp(0.0, 1.0)


def convergence(loss_real: torch.Tensor, loss_fake: torch.Tensor, gamma: float) -> torch.Tensor:
    """The convergence measure M = L(x) + |gamma L(x) - L(G(z))|: falls as the samples improve."""
    return loss_real + (gamma * loss_real - loss_fake).abs()


class Equilibrium:
    """k_t, training state: checkpointed with the run (``state_objects``), so a resumed run continues with it."""

    def __init__(self, k_0: float):
        self.k = torch.tensor(float(k_0))

    def state_dict(self) -> dict:
        return {"k": self.k.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.k = state["k"].detach().clone().float()

    def to(self, device: Any) -> Equilibrium:
        self.k = self.k.to(device)
        return self


@MODELS.register("began")
class BEGAN(GAN):
    """BEGAN: L_D = L(x) - k_t L(G(z)), L_G = L(G(z)), k_t updated after each D step; M logged (``began/M``)."""

    losses_required = ()
    collapse_remedies = ("BEGAN's G often collapses onto D's easiest image first and comes out of it once k_t has "
                         "risen (watch began/k; the digits demo leaves it near step 750, k_t 0.4): give it time. If "
                         "k_t stays near 0, the collapsed G sits at equilibrium: raise model.gamma (toward 1, so D "
                         "pushes back until the fakes are as hard to reconstruct as real images) or model.lambda_k "
                         "(k_t reacts faster); a shallow D (nets.d.stages: 1) helped on digits.")

    def __init__(self, nets: dict, losses: dict, gamma: float = 0.5, lambda_k: float = 0.001, k_0: float = 0.0):
        super().__init__(nets, losses)
        self.gamma, self.lambda_k = gamma, lambda_k
        self.equilibrium = Equilibrium(k_0)

    def state_objects(self) -> dict[str, Any]:
        return {"began_k": self.equilibrium}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        d = self.nets["d"]
        loss_real = reconstruction_error(d, batch["real"])
        loss_fake = reconstruction_error(d, out["fake"].detach())
        k = self.equilibrium.k.to(loss_real.device)
        ctx.update("d", loss_real - k * loss_fake)
        real, fake = loss_real.detach().float(), loss_fake.detach().float()
        self.equilibrium.k = equilibrium_step(k, real, fake, self.gamma, self.lambda_k)
        return {"d/real": real, "d/fake": fake, "began/k": k, "began/M": convergence(real, fake, self.gamma)}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            loss = reconstruction_error(d, out["fake"])
        ctx.update("g", loss)
        return {"g/energy": loss}

    @torch.no_grad()
    def eval_measures(self, real: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """M on held-out real images and as many fresh samples (nets in eval mode), for the scorer."""
        g, d = _unwrap(self.nets["g"]), _unwrap(self.nets["d"])
        modes = g.training, d.training
        g.eval(), d.eval()
        sums = torch.zeros(2, dtype=torch.float64)
        for chunk in real.split(256):
            z = torch.randn(len(chunk), g.z_dim, generator=generator).to(chunk.device)
            fake = g(z).float()
            sums += torch.tensor([(d(chunk)[0].float() - chunk).abs().mean().item() * len(chunk),
                                  (d(fake)[0].float() - fake).abs().mean().item() * len(chunk)], dtype=torch.float64)
        g.train(modes[0]), d.train(modes[1])
        loss_real, loss_fake = (sums / len(real)).tolist()
        return {"began_M": float(convergence(torch.tensor(loss_real), torch.tensor(loss_fake), self.gamma)),
                "began_real": loss_real, "began_fake": loss_fake, "began_k": float(self.equilibrium.k)}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        check_autoencoder_d(cls, recipe, file=file)
        model = recipe["model"]
        for key, low, high in (("gamma", 0.0, 1.0), ("lambda_k", 0.0, 1.0), ("k_0", 0.0, 1.0)):
            value = model.get(key)
            if value is not None and not (isinstance(value, (int, float)) and low <= value <= high):
                raise RecipeError(f"must be a number in [{low}, {high}] (the paper: gamma 0.5, lambda_k 0.001, k_0 0; "
                                  "recipes/began.yaml: gamma 1)",
                                  file=file, key=f"model.{key}", value=value)


def check_autoencoder_d(cls: type, recipe: dict, *, file: str) -> None:
    """The energy-based GANs need a D that reconstructs its input (it has an ``embed_dim``)."""
    if cls.net_arg(recipe, "d", "embed_dim") is None:
        raise RecipeError(f"{recipe['model']['type']} needs an autoencoder D that returns (reconstruction, "
                          "embedding): use type: autoencoder_discriminator", file=file, key="nets.d.type",
                          value=recipe["nets"]["d"]["type"])
