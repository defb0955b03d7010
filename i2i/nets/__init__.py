"""Built-in nets; importing this package registers them in ``NETS``."""
from .patchgan import PatchGAN, PixelDiscriminator
from .resnet import ResnetGenerator
from .unet import UNetGenerator

__all__ = ["PatchGAN", "PixelDiscriminator", "ResnetGenerator", "UNetGenerator"]
