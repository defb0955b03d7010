"""GAN algorithms: each a plain class with explicit ``d_step`` / ``g_step`` (see base.GANModel)."""
from .base import GANModel, StepContext
from .bicyclegan import BicycleGAN
from .conditional import ACGAN, CGAN, InfoGAN
from .cyclegan import CycleGAN
from .esrgan import ESRGAN, SRPixel
from .pix2pix import Pix2Pix

__all__ = ["ACGAN", "BicycleGAN", "CGAN", "CycleGAN", "ESRGAN", "GANModel", "InfoGAN", "Pix2Pix", "SRPixel", "StepContext"]
