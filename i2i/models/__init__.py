"""GAN algorithms, one paper per file: each a plain class with explicit ``d_step`` / ``g_step`` (see base.GANModel).

Importing a module registers its models in ``i2i.registry.MODELS``.
"""
from .aae import AAE
from .acgan import ACGAN
from .base import GANModel, StepContext
from .began import BEGAN
from .bicyclegan import BicycleGAN
from .bigan import BiGAN
from .ccgan import CCGAN
from .cgan import CGAN
from .clustergan import ClusterGAN
from .cogan import CoGAN
from .context_encoder import ContextEncoder
from .cyclegan import CycleGAN
from .ebgan import EBGAN
from .esrgan import ESRGAN, SRPixel
from .gan import GAN, LatentGAN
from .infogan import InfoGAN
from .pix2pix import Pix2Pix
from .sgan import SGAN
from .stargan import StarGAN
from .unit import UNIT
from .vaegan import VAEGAN

__all__ = ["ACGAN", "BicycleGAN", "CGAN", "CycleGAN", "ESRGAN", "GAN", "GANModel", "InfoGAN", "LatentGAN", "Pix2Pix",
           "SGAN", "SRPixel", "StepContext"]
__all__ += ["AAE", "BiGAN", "VAEGAN"]
__all__ += ["StarGAN"]
__all__ += ["BEGAN", "ClusterGAN", "EBGAN"]
__all__ += ["CCGAN", "ContextEncoder"]
__all__ += ["CoGAN", "UNIT"]
