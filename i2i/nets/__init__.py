"""Built-in nets; importing this package registers them in ``NETS``."""
from .classifier import ImageClassifier
from .dcgan import AuxDiscriminator, DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .patchgan import PatchGAN, PixelDiscriminator
from .resnet import ResnetGenerator
from .rrdb import RRDBNet, UNetDiscriminatorSN, VGGDiscriminator
from .timm_disc import TimmDiscriminator
from .unet import UNetGenerator

__all__ = [
    "AuxDiscriminator", "DCGANDiscriminator", "DCGANGenerator", "ImageClassifier", "MLPDiscriminator",
    "MLPGenerator", "PatchGAN", "PixelDiscriminator", "RRDBNet", "ResnetGenerator", "TimmDiscriminator",
    "UNetDiscriminatorSN", "UNetGenerator", "VGGDiscriminator",
]
