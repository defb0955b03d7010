"""Built-in nets; importing this package registers them in ``NETS``."""
from .classifier import ImageClassifier
from .dcgan import AuxDiscriminator, DCGANDiscriminator, DCGANGenerator
from .encoder import ConvEncoder, ResNetEncoder, TimmEncoder
from .mlp import MLPDiscriminator, MLPGenerator
from .patchgan import MultiScalePatchGAN, PatchGAN, PixelDiscriminator
from .resnet import ResnetGenerator
from .rrdb import RRDBNet, UNetDiscriminatorSN, VGGDiscriminator
from .timm_disc import TimmDiscriminator
from .unet import UNetGenerator

__all__ = [
    "AuxDiscriminator", "ConvEncoder", "DCGANDiscriminator", "DCGANGenerator", "ImageClassifier",
    "MLPDiscriminator", "MLPGenerator", "MultiScalePatchGAN", "PatchGAN", "PixelDiscriminator", "RRDBNet",
    "ResNetEncoder", "ResnetGenerator", "TimmDiscriminator", "TimmEncoder", "UNetDiscriminatorSN", "UNetGenerator",
    "VGGDiscriminator",
]
