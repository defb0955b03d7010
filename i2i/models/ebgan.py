"""EBGAN (Zhao et al. 2016, arXiv:1609.03126): D is an autoencoder whose reconstruction error is an energy, low on
real images; a margin bounds how high D pushes the fakes' energy; the pull-away term (EBGAN-PT) spreads G's
samples apart in D's embedding."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import RecipeError
from ..registry import MODELS
from .base import StepContext
from .began import check_autoencoder_d
from .gan import GAN, _unwrap


def energy(d: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image energy D(x) = mean squared reconstruction error (B,), and D's embedding (B, F)."""
    rec, h = d(x)
    return (rec - x).pow(2).flatten(1).mean(1), h


def margin_loss(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin: float) -> torch.Tensor:
    """L_D = D(x) + max(0, m - D(G(z))), averaged over the batch (per image, as the paper writes it)."""
    return energy_real.mean() + F.relu(margin - energy_fake).mean()


def pull_away(h: torch.Tensor) -> torch.Tensor:
    """f_PT(S) = 1 / (N (N - 1)) sum_{i != j} (S_i . S_j / (|S_i| |S_j|))^2 over a batch of embeddings (N >= 2)."""
    n = h.shape[0]
    s = F.normalize(h.flatten(1).float(), dim=1)
    cos2 = (s @ s.T).pow(2)
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


@MODELS.register("ebgan")
class EBGAN(GAN):
    """EBGAN-PT: L_D = D(x) + [m - D(G(z))]^+, L_G = D(G(z)) + pt_weight * f_PT(embeddings of G(z))."""

    losses_required = ()

    def __init__(self, nets: dict, losses: dict, margin: float = 1.0, pt_weight: float = 0.1):
        super().__init__(nets, losses)
        self.margin, self.pt_weight = margin, pt_weight

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        d = self.nets["d"]
        e_real, _ = energy(d, batch["real"])
        e_fake, _ = energy(d, out["fake"].detach())
        ctx.update("d", margin_loss(e_real, e_fake, self.margin))
        return {"d/real": e_real.mean(), "d/fake": e_fake.mean()}

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, Any],
               ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.frozen("d") as (d,):
            e_fake, h = energy(d, out["fake"])
        pt = pull_away(h) if self.pt_weight > 0 and len(h) > 1 else e_fake.new_zeros(())
        ctx.update("g", e_fake.mean() + self.pt_weight * pt)
        return {"g/energy": e_fake.mean(), "g/pull_away": pt}

    @torch.no_grad()
    def eval_measures(self, real: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Mean energy of held-out real images and of as many fresh samples, and the samples' pull-away term."""
        g, d = _unwrap(self.nets["g"]), _unwrap(self.nets["d"])
        modes = g.training, d.training
        g.eval(), d.eval()
        e_real, e_fake, pts = [], [], []
        for chunk in real.split(256):
            z = torch.randn(len(chunk), g.z_dim, generator=generator).to(chunk.device)
            fake = g(z).float()
            e_real.append(energy(d, chunk)[0].float())
            ef, h = energy(d, fake)
            e_fake.append(ef.float())
            if len(h) > 1:
                pts.append(float(pull_away(h)))
        g.train(modes[0]), d.train(modes[1])
        return {"ebgan_energy_real": float(torch.cat(e_real).mean()),
                "ebgan_energy_fake": float(torch.cat(e_fake).mean()),
                "ebgan_pull_away": float(sum(pts) / max(1, len(pts)))}

    @classmethod
    def validate(cls, recipe: dict, data_channels: dict[str, int], *, file: str) -> None:
        super().validate(recipe, data_channels, file=file)
        check_autoencoder_d(cls, recipe, file=file)
        for key in ("margin", "pt_weight"):
            value = recipe["model"].get(key)
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise RecipeError("must be a number >= 0 (EBGAN: margin 1 for per-pixel mean squared energies of "
                                  "[-1, 1] images at batch 64, pt_weight 0.1)", file=file, key=f"model.{key}",
                                  value=value)
