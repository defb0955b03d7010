"""GAN algorithms, one paper per file: each a plain class with explicit ``d_step`` / ``g_step`` (see base.GANModel).

Importing a module registers its models in ``i2i.registry.MODELS``.
"""
from .acgan import ACGAN
from .base import GANModel, StepContext
from .bicyclegan import BicycleGAN
from .cgan import CGAN
from .cyclegan import CycleGAN
from .esrgan import ESRGAN, SRPixel
from .gan import GAN, LatentGAN
from .infogan import InfoGAN
from .pix2pix import Pix2Pix

__all__ = ["ACGAN", "BicycleGAN", "CGAN", "CycleGAN", "ESRGAN", "GAN", "GANModel", "InfoGAN", "LatentGAN", "Pix2Pix",
           "SRPixel", "StepContext"]
