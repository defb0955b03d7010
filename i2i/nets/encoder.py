"""Image encoders to a Gaussian latent code, (mu, logvar), for BicycleGAN (Zhu et al. 2017, arXiv:1711.11586)."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import RecipeError
from ..layers import Init, Norm, conv_bias, init_weights, norm_layer
from ..registry import NETS, config_value
from .timm_disc import (
    BackboneInput,
    TimmSizes,
    _timm,
    assign_backbone_weights,
    check_backbone,
    check_timm_config,
    load_weights_file,
)


def _check_encoder_args(z_dim: int, **positive: int) -> None:
    if z_dim < 1:
        raise ValueError(f"encoder z_dim must be >= 1, got {z_dim}")
    for name, value in positive.items():
        if value < 1:
            raise ValueError(f"encoder {name} must be >= 1, got {value}")


def _check_size(net: nn.Module, x: torch.Tensor, min_size: int) -> None:
    if torch.jit.is_tracing():
        return
    if x.dim() != 4 or x.shape[1] != net.in_channels:
        raise ValueError(f"{net.registered_name}(in_channels={net.in_channels}) needs (B, {net.in_channels}, H, W) "
                         f"images, got {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"{net.registered_name} needs H and W >= {min_size}, got {tuple(x.shape[-2:])}")


class _GaussianHeads(nn.Module):
    """Two linear heads on pooled features: (B, C) -> (mu, logvar), each (B, z_dim)."""

    def __init__(self, channels: int, z_dim: int):
        super().__init__()
        self.mu, self.logvar = nn.Linear(channels, z_dim), nn.Linear(channels, z_dim)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(f), self.logvar(f)


class ResidualDownBlock(nn.Module):
    """E_ResNet's block: [norm, LReLU, conv3x3, norm, LReLU, conv3x3, avgpool] + [avgpool, conv1x1]; halves H, W."""

    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__()
        # not in place: with norm "none" an in-place activation would also change the shortcut's input
        self.body = nn.Sequential(
            norm_layer(norm, cin), nn.LeakyReLU(0.2), nn.Conv2d(cin, cin, 3, 1, 1, bias=conv_bias(norm)),
            norm_layer(norm, cin), nn.LeakyReLU(0.2), nn.Conv2d(cin, cout, 3, 1, 1), nn.AvgPool2d(2, 2))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class _PooledEncoder(nn.Module):
    """Shared by the conv encoders: ``features`` (pooled to (B, C)), ``heads``, and a ``min_size`` that depends on
    the constructor arguments kept in ``size_args``."""

    size_args: dict

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return 1

    def example_inputs(self, batch: int = 2, size: int = 32) -> tuple[torch.Tensor, ...]:
        side = max(size, self.min_size(**self.size_args))
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_size(self, x, self.min_size(**self.size_args))
        return self.heads(self.features(x))


@NETS.register("resnet_encoder")
class ResNetEncoder(_PooledEncoder):
    """BicycleGAN's E_ResNet: (B, in, H, W) -> (mu, logvar), each (B, z_dim); H, W >= 2**blocks.

    A 4x4 stride-2 conv, then ``blocks - 1`` residual blocks that each halve the size (block n has
    base_channels * min(max_mult, n + 1) channels), LeakyReLU, global average pooling (any image size) and two
    linear heads. The reference uses blocks=5 at 256 px (4 at 128 px).
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "blocks": 3, "z_dim": 4}

    def __init__(self, in_channels: int = 3, z_dim: int = 8, base_channels: int = 64, blocks: int = 5,
                 max_mult: int = 4, norm: Norm = "instance", init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        _check_encoder_args(z_dim, blocks=blocks, max_mult=max_mult)  # width 0: the generic "empty" error
        norm_layer(norm, 1)  # an unknown norm fails here, whatever `blocks` is
        self.in_channels, self.z_dim, self.blocks = in_channels, z_dim, blocks
        self.size_args = {"blocks": blocks}
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1)]
        for n in range(1, blocks):
            layers.append(ResidualDownBlock(base_channels * min(max_mult, n), base_channels * min(max_mult, n + 1),
                                            norm))
        layers += [nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.heads = _GaussianHeads(base_channels * min(max_mult, blocks), z_dim)
        init_weights(self, init, init_gain)

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        return 2 ** kwargs.get("blocks", 5)  # the stem conv and every block halve (floor) the size


@NETS.register("conv_encoder")
class ConvEncoder(_PooledEncoder):
    """BicycleGAN's E_NLayers: (B, in, H, W) -> (mu, logvar), each (B, z_dim); H, W >= 2**(layers + 1).

    ``layers`` 4x4 stride-2 convs with LeakyReLU 0.2 (norm after all but the first; channels
    base_channels * min(2**n, max_mult)), global average pooling (any image size) and two linear heads.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "layers": 2, "z_dim": 4}

    def __init__(self, in_channels: int = 3, z_dim: int = 8, base_channels: int = 64, layers: int = 3,
                 max_mult: int = 4, norm: Norm = "instance", init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        _check_encoder_args(z_dim, layers=layers, max_mult=max_mult)
        norm_layer(norm, 1)
        self.in_channels, self.z_dim, self.layers = in_channels, z_dim, layers
        self.size_args = {"layers": layers}
        seq: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = base_channels
        for n in range(1, layers):
            c_next = base_channels * min(2 ** n, max_mult)
            seq += [nn.Conv2d(c, c_next, 4, 2, 1, bias=conv_bias(norm)), norm_layer(norm, c_next),
                    nn.LeakyReLU(0.2, True)]
            c = c_next
        seq += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*seq)
        self.heads = _GaussianHeads(c, z_dim)
        init_weights(self, init, init_gain)

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        # each conv floors n/2; the last map must keep 2x2 (instance norm needs more than one pixel)
        return 2 ** (kwargs.get("layers", 3) + 1)


@NETS.register("timm_encoder")
class TimmEncoder(TimmSizes, nn.Module):
    """An encoder on any timm backbone: (B, in, H, W) -> (mu, logvar), each (B, z_dim).

    The backbone is ``timm.create_model(backbone, num_classes=0)`` (its pooled features), followed by two linear
    heads. Nothing is downloaded: ``pretrained`` is the path of a local weights file (.safetensors or a torch
    state dict, e.g. a full timm checkpoint: its classifier is ignored). Inputs in [-1, 1] are mapped to the
    backbone's mean/std; grayscale (in_channels=1) is repeated to RGB, so RGB checkpoints load unchanged. The
    whole net trains (the encoder learns with G in BicycleGAN).
    """

    smoke_args: ClassVar[dict] = {"backbone": "mobilenetv3_small_050", "z_dim": 4}

    def __init__(self, backbone: str, in_channels: int = 3, z_dim: int = 8, pretrained: str | None = None,
                 init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        check_backbone(backbone)
        _check_encoder_args(z_dim)
        timm = _timm()
        state = load_weights_file(pretrained, backbone, who="timm_encoder") if pretrained is not None else None
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0)
        if state is not None:
            assign_backbone_weights(self.backbone, state, path=str(pretrained), name=backbone, who="timm_encoder")
        self.backbone_name, self.pretrained_path = backbone, pretrained
        self.in_channels, self.z_dim = in_channels, z_dim
        self.input_map = BackboneInput(self.backbone, in_channels, "timm_encoder")
        # the pooled width: head_hidden_size where a head conv follows the pooling (MobileNetV3), else num_features
        width = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        self.heads = _GaussianHeads(int(width), z_dim)
        init_weights(self.heads, init, init_gain)  # the heads only: the backbone keeps its own (or loaded) weights

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        check_timm_config(cls, cfg, key=key, file=file, who="timm_encoder")
        z_dim = config_value(cls, cfg, "z_dim")
        if isinstance(z_dim, int) and z_dim < 1:
            raise RecipeError("z_dim must be >= 1", file=file, key=f"{key}.z_dim", value=z_dim)

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        side = max(size or 32, self.min_size())
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's pooled features (B, C) for images in [-1, 1]."""
        return self.backbone(self.input_map(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))
