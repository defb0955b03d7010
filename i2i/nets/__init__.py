"""Built-in nets; importing this package registers them in ``NETS``."""
from .autoencoder import AutoencoderDiscriminator, ClusterEncoder
from .classifier import ImageClassifier
from .cogan import (
    CoupledDiscriminatorHead,
    CoupledDiscriminatorTrunk,
    CoupledGeneratorHead,
    CoupledGeneratorTrunk,
)
from .dcgan import AuxDiscriminator, DCGANDiscriminator, DCGANGenerator
from .encoder import ConvEncoder, ResNetEncoder, TimmEncoder
from .factory import build_net
from .latent import DCGANEncoder, JointDiscriminator, MLPEncoder, VectorDiscriminator
from .mlp import MLPDiscriminator, MLPGenerator
from .patchgan import MultiScalePatchGAN, PatchGAN, PixelDiscriminator
from .resnet import ResnetGenerator
from .rrdb import RRDBNet
from .sr_discriminators import UNetDiscriminatorSN, VGGDiscriminator
from .timm_disc import TimmDiscriminator
from .unet import UNetGenerator
from .unit import UNITDecoder, UNITEncoder, UNITShared

__all__ = [
    "CoupledDiscriminatorHead", "CoupledDiscriminatorTrunk", "CoupledGeneratorHead", "CoupledGeneratorTrunk",
    "UNITDecoder", "UNITEncoder", "UNITShared",
    "AutoencoderDiscriminator", "AuxDiscriminator", "ClusterEncoder", "ConvEncoder", "DCGANDiscriminator",
    "DCGANEncoder", "DCGANGenerator", "ImageClassifier",
    "JointDiscriminator", "MLPEncoder",
    "MLPDiscriminator", "MLPGenerator", "build_net", "MultiScalePatchGAN", "PatchGAN", "PixelDiscriminator", "RRDBNet",
    "ResNetEncoder", "ResnetGenerator", "TimmDiscriminator", "TimmEncoder", "UNetDiscriminatorSN", "UNetGenerator",
    "VGGDiscriminator", "VectorDiscriminator",
]
