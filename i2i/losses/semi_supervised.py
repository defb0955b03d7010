"""The K+1-class discriminator of semi-supervised GANs (SGAN: Odena 2016, arXiv:1606.01583; Salimans et al.
2016, arXiv:1606.03498), shared by every model whose D also classifies (sgan, ccgan).

D outputs class logits l_1..l_K and a logit for the extra class "generated". Its real-vs-fake judgement is
p(real | x) / p(fake | x) = sum_k exp(l_k) / exp(l_fake), so the adversarial logit is
logsumexp(l_1..l_K) - l_fake, and any adversarial mode applies to it (``AdversarialLoss(logits=...)``): vanilla
gives exactly the unsupervised terms -log p(real | x) on real and -log p(fake | G(z)) on generated images.
``fake_logit: fixed`` is Salimans et al.'s parameterisation: D has K outputs and l_fake is fixed at 0 (the softmax
over K + 1 classes is over-parameterised); ``learned`` is Odena's: D has K + 1 outputs, the last one generated.
The supervised term is the cross-entropy over the K real classes on labeled images (p(y | x, real)), averaged
over the images with a label (label >= 0); images with label -1 are unlabeled and count only adversarially.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RecipeError
from ..registry import LOSSES

UNLABELED = -1  # the label of an image whose class is not used for training
FAKE_LOGITS = ("fixed", "learned")


def class_logits(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The K real-class logits of D's output (drops a learned fake logit, the last column)."""
    return logits[:, :num_classes]


@LOSSES.register("semi_supervised")
class SemiSupervisedLoss(nn.Module):
    """Supervised cross-entropy over the K real classes on labeled images, and the GAN logit of a K+1-class D.

    ``forward(logits, labels)``: weight * mean CE over the images whose label is >= 0 (0 when none is labeled).
    ``adversarial_logits(logits)``: (B, 1) logsumexp(l_1..l_K) - l_fake, for ``AdversarialLoss(logits=...)``.
    ``outputs(K)``: how many outputs D needs (K for ``fixed``, K + 1 for ``learned``).
    """

    def __init__(self, weight: float = 1.0, fake_logit: Literal["fixed", "learned"] = "fixed"):
        super().__init__()
        if fake_logit not in FAKE_LOGITS:
            raise ValueError(f"fake_logit must be one of {', '.join(FAKE_LOGITS)}, got {fake_logit!r}")
        self.weight, self.fake_logit = weight, fake_logit

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        if cfg.get("fake_logit", "fixed") not in FAKE_LOGITS:
            raise RecipeError("unknown fake-class parameterisation", file=file, key=f"{key}.fake_logit",
                              value=cfg.get("fake_logit"), choices=FAKE_LOGITS)

    def outputs(self, num_classes: int) -> int:
        return num_classes + (self.fake_logit == "learned")

    def adversarial_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if self.fake_logit == "learned":
            return (torch.logsumexp(logits[:, :-1], 1) - logits[:, -1]).unsqueeze(1)
        return torch.logsumexp(logits, 1, keepdim=True)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        k = logits.shape[1] - (self.fake_logit == "learned")
        labeled = (labels >= 0).to(logits.dtype)
        # masked mean, no host sync; a batch without labels gives 0 with the same graph
        ce = F.cross_entropy(class_logits(logits, k), labels.clamp(min=0), reduction="none")
        return self.weight * (ce * labeled).sum() / labeled.sum().clamp(min=1)


@LOSSES.register("feature_matching")
class FeatureMatchingLoss(nn.Module):
    """Feature matching (Salimans et al. 2016, section 3.1): G matches the mean of D's intermediate features on
    real images, weight * mean_j (E f_j(x) - E f_j(G(z)))^2; their generator loss for semi-supervised GANs.
    ``forward(real_features, fake_features)``, each (B, F); the real side is a target (detached)."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
        diff = real_features.detach().flatten(1).mean(0) - fake_features.flatten(1).mean(0)
        return self.weight * diff.pow(2).mean()
