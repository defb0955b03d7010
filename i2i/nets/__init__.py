"""Built-in nets; importing this package registers them in ``NETS``."""
from .classifier import ImageClassifier
from .dcgan import AuxDiscriminator, DCGANDiscriminator, DCGANGenerator
from .encoder import ConvEncoder, ResNetEncoder, TimmEncoder
from .factory import build_net
from .mlp import MLPDiscriminator, MLPGenerator
from .patchgan import MultiScalePatchGAN, PatchGAN, PixelDiscriminator
from .resnet import ResnetGenerator
from .rrdb import RRDBNet
from .sr_discriminators import UNetDiscriminatorSN, VGGDiscriminator
from .timm_disc import TimmDiscriminator
from .unet import UNetGenerator

__all__ = [
    "AuxDiscriminator", "ConvEncoder", "DCGANDiscriminator", "DCGANGenerator", "ImageClassifier",
    "MLPDiscriminator", "MLPGenerator", "build_net", "MultiScalePatchGAN", "PatchGAN", "PixelDiscriminator", "RRDBNet",
    "ResNetEncoder", "ResnetGenerator", "TimmDiscriminator", "TimmEncoder", "UNetDiscriminatorSN", "UNetGenerator",
    "VGGDiscriminator",
]
