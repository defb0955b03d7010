"""Adversarial losses behind one interface: ``generator(fake_logits)`` and ``discriminator(real, fake)``."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RecipeError
from ..registry import LOSSES

Logits = torch.Tensor | Sequence[torch.Tensor]


def _each(logits: Logits) -> list[torch.Tensor]:
    """A multi-scale D returns one logit map per scale; every loss sums over them."""
    return list(logits) if isinstance(logits, (list, tuple)) else [logits]


def _target(logits: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full_like(logits, value)


class AdversarialMode:
    """One GAN objective. Subclasses implement losses on a single logit map; targets come from the loss."""

    def __init__(self, real_label: float, fake_label: float):
        self.real_label, self.fake_label = real_label, fake_label

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Vanilla(AdversarialMode):
    """Goodfellow et al. 2014: BCE with logits; G uses the non-saturating form -log D(G(z))."""

    def generator(self, fake, real):
        return F.binary_cross_entropy_with_logits(fake, _target(fake, self.real_label))

    def discriminator(self, real, fake):
        return 0.5 * (F.binary_cross_entropy_with_logits(real, _target(real, self.real_label))
                      + F.binary_cross_entropy_with_logits(fake, _target(fake, self.fake_label)))


class LSGAN(AdversarialMode):
    """Mao et al. 2017: least squares to the real (1) and fake (0) targets."""

    def generator(self, fake, real):
        return F.mse_loss(fake, _target(fake, self.real_label))

    def discriminator(self, real, fake):
        return 0.5 * (F.mse_loss(real, _target(real, self.real_label))
                      + F.mse_loss(fake, _target(fake, self.fake_label)))


ADVERSARIAL_MODES: dict[str, Callable[..., AdversarialMode]] = {"vanilla": Vanilla, "lsgan": LSGAN}


@LOSSES.register("adversarial")
class AdversarialLoss(nn.Module):
    """GAN objective with a pluggable ``mode`` (ADVERSARIAL_MODES); logits (B, 1, ...) or a list of them -> scalar.

    The discriminator loss is the mean of its real and fake terms (x0.5), as in pix2pix and CycleGAN.
    """

    def __init__(self, mode: str = "vanilla", weight: float = 1.0, real_label: float = 1.0,
                 fake_label: float = 0.0):
        super().__init__()
        if mode not in ADVERSARIAL_MODES:
            raise ValueError(f"unknown adversarial mode '{mode}'; valid: {', '.join(sorted(ADVERSARIAL_MODES))}")
        self.mode_name, self.weight = mode, weight
        self.mode = ADVERSARIAL_MODES[mode](real_label, fake_label)

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        mode = cfg.get("mode", "vanilla")
        if mode not in ADVERSARIAL_MODES:
            raise RecipeError("unknown adversarial mode", file=file, key=f"{key}.mode", value=mode,
                              choices=ADVERSARIAL_MODES)

    def generator(self, fake: Logits, real: Logits | None = None) -> torch.Tensor:
        """G's loss on D's logits for generated images (``real`` is used by relativistic modes)."""
        reals = _each(real) if real is not None else [None] * len(_each(fake))
        return self.weight * sum(self.mode.generator(f, r) for f, r in zip(_each(fake), reals))

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        """D's loss on its logits for real and (detached) generated images."""
        return self.weight * sum(self.mode.discriminator(r, f) for r, f in zip(_each(real), _each(fake)))
