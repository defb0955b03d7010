"""GAN algorithms: each a plain class with explicit ``d_step`` / ``g_step`` (see base.GANModel)."""
from .base import GANModel, StepContext
from .cyclegan import CycleGAN
from .pix2pix import Pix2Pix

__all__ = ["GANModel", "StepContext", "CycleGAN", "Pix2Pix"]
