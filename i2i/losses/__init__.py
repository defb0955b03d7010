"""Losses: each an nn.Module that owns its ``weight`` and returns a weighted scalar."""
from .adversarial import ADVERSARIAL_MODES, AdversarialLoss
from .pixel import L1Loss, MSELoss

__all__ = ["ADVERSARIAL_MODES", "AdversarialLoss", "L1Loss", "MSELoss"]
