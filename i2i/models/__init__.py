"""GAN algorithms: each a plain class with explicit ``d_step`` / ``g_step`` (see base.GANModel)."""
from .base import GANModel, StepContext
from .conditional import ACGAN, CGAN, InfoGAN
from .cyclegan import CycleGAN
from .pix2pix import Pix2Pix

__all__ = ["ACGAN", "CGAN", "CycleGAN", "GANModel", "InfoGAN", "Pix2Pix", "StepContext"]
