"""Losses: each an nn.Module that owns its ``weight`` and returns a weighted scalar."""
from .adversarial import ADVERSARIAL_MODES, AdversarialLoss
from .latent import AuxClassificationLoss, KLLoss, MutualInformationLoss
from .perceptual import PerceptualLoss
from .pixel import L1Loss, MSELoss
from .semi_supervised import FeatureMatchingLoss, SemiSupervisedLoss

__all__ = [
    "ADVERSARIAL_MODES", "AdversarialLoss", "AuxClassificationLoss", "FeatureMatchingLoss", "KLLoss", "L1Loss",
    "MSELoss", "MutualInformationLoss", "PerceptualLoss", "SemiSupervisedLoss",
]
