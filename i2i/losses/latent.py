"""Losses on latent information: auxiliary classification (ACGAN) and mutual information (InfoGAN)."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import LOSSES


@LOSSES.register("aux_classification")
class AuxClassificationLoss(nn.Module):
    """ACGAN (Odena et al. 2017) class loss: cross-entropy on raw logits (B, K) against labels (B,) -> scalar.

    No softmax before it: a softmax followed by CrossEntropyLoss is the known ACGAN/InfoGAN bug of PyTorch-GAN.
    Float 0/1 targets (B, K) are multi-label attributes (StarGAN's CelebA setting, Choi et al. 2018): binary
    cross-entropy per attribute, summed over attributes and averaged over the batch, as the reference does.
    """

    def __init__(self, weight: float = 1.0, label_smoothing: float = 0.0):
        super().__init__()
        self.weight, self.label_smoothing = weight, label_smoothing

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.is_floating_point() and y.shape == logits.shape:
            target = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
            return self.weight * F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(y)
        return self.weight * F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)


@LOSSES.register("mutual_information")
class MutualInformationLoss(nn.Module):
    """InfoGAN (Chen et al. 2016) lower bound on I(c; G(z, c)): CE for categorical codes, MSE or Gaussian NLL
    for continuous codes. Takes the Q head's outputs (dict with 'cat', 'cont_mu'[, 'cont_logvar']) -> scalar."""

    def __init__(self, weight: float = 1.0, cat_weight: float = 1.0, cont_weight: float = 0.1,
                 cont_mode: Literal["mse", "gaussian_nll"] = "mse"):
        super().__init__()
        self.weight, self.cat_weight, self.cont_weight, self.cont_mode = weight, cat_weight, cont_weight, cont_mode

    def forward(self, q: dict, codes: dict) -> torch.Tensor:
        total = torch.zeros((), device=codes["z"].device)
        for logits, target in zip(q.get("cat", []), codes["cat_idx"]):
            total = total + self.cat_weight * F.cross_entropy(logits, target)
        if codes["cont"] is not None and codes["cont"].shape[1] > 0:
            mu = q["cont_mu"]
            if self.cont_mode == "mse":
                cont = F.mse_loss(mu, codes["cont"])
            else:
                var = q["cont_logvar"].exp() if "cont_logvar" in q else torch.ones_like(mu)
                cont = F.gaussian_nll_loss(mu, codes["cont"], var)
            total = total + self.cont_weight * cont
        return self.weight * total


@LOSSES.register("kl")
class KLLoss(nn.Module):
    """KL(N(mu, exp(logvar)) || N(0, I)) of a VAE-style encoder's (mu, logvar), each (B, z) -> scalar.

    Summed over z and averaged over the batch: equal to BicycleGAN's reference (which sums over everything) at its
    batch of 2, whose cVAE half is one image, and independent of the batch size otherwise.
    """

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        return self.weight * kl.flatten(1).sum(1).mean()
