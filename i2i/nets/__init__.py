"""Built-in nets; importing this package registers them in ``NETS``."""
from .classifier import ImageClassifier
from .dcgan import AuxDiscriminator, DCGANDiscriminator, DCGANGenerator
from .patchgan import PatchGAN, PixelDiscriminator
from .resnet import ResnetGenerator
from .unet import UNetGenerator

__all__ = ["AuxDiscriminator", "DCGANDiscriminator", "DCGANGenerator", "ImageClassifier",
           "PatchGAN", "PixelDiscriminator", "ResnetGenerator", "UNetGenerator"]
