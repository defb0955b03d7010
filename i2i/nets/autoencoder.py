"""Nets that map images back to codes: the autoencoder discriminator of the energy-based GANs (BEGAN, EBGAN) and
ClusterGAN's inverting encoder."""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from ..layers import Init, Norm, conv_bias, init_weights, norm_layer, upsample2x
from ..registry import NETS
from .dcgan import _FixedSize, _plan_or_raise, _Trunk

Activation = Literal["elu", "relu", "leaky_relu"]


def _activation(kind: str) -> nn.Module:
    acts = {"elu": nn.ELU, "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2)}
    if kind not in acts:
        raise ValueError(f"unknown activation '{kind}'; valid: {', '.join(acts)}")
    return acts[kind]()


def _check_image(net: nn.Module, x: torch.Tensor) -> None:
    if not torch.jit.is_tracing() and tuple(x.shape[1:]) != (net.in_channels, net.size, net.size):
        raise ValueError(f"{type(net).__name__}(in_channels={net.in_channels}, size={net.size}) needs "
                         f"(B, {net.in_channels}, {net.size}, {net.size}) images, got {tuple(x.shape)}")


@NETS.register("autoencoder_discriminator")
class AutoencoderDiscriminator(_FixedSize):
    """BEGAN (Berthelot et al. 2017, arXiv:1703.10717) / EBGAN (Zhao et al. 2016, arXiv:1609.03126) D: an
    autoencoder, (B, in, size, size) -> (reconstruction (B, in, size, size), embedding (B, embed_dim)).

    Encoder: ``stages`` strided 4x4 convs doubling the channels from ``base_channels`` (norm after all but the
    first) -> Linear to the embedding. By default the convs go down to 4x4; ``stages: 1`` is one conv, then the
    Linear: the shallow D of the MNIST BEGAN implementations (PyTorch-GAN's, pytorch-generative-model-collections').
    Decoder: the mirror image, as DCGAN's generator: Linear -> the encoder's last map, x2 upsampling stages
    (nearest + 3x3 conv by default, as BEGAN's decoder) halving the channels, the last one making the image. No
    output activation: the energy is the reconstruction error. ELU by default, as BEGAN.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "size": 16, "embed_dim": 8, "norm": "batch"}

    def __init__(self, in_channels: int = 1, size: int = 32, base_channels: int = 64, embed_dim: int = 64,
                 norm: Norm = "none", activation: Activation = "elu",
                 upsample: Literal["resize", "transposed"] = "resize", init: Init = "normal",
                 init_gain: float = 0.02, stages: int | None = None):
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"AutoencoderDiscriminator embed_dim must be >= 1, got {embed_dim}")
        _activation(activation)
        s0, k = _plan_or_raise("AutoencoderDiscriminator", size)
        if stages is not None:
            if not (isinstance(stages, int) and 1 <= stages <= k):
                raise ValueError(f"AutoencoderDiscriminator stages must be an integer in 1..{k} at size {size} "
                                 f"(the strided convs down to {s0}x{s0}), got {stages}")
            s0, k = size // 2 ** stages, stages
        self.in_channels, self.size, self.embed_dim = in_channels, size, embed_dim
        enc: list[nn.Module] = []
        cin = in_channels
        for i in range(k):
            cout = base_channels * 2 ** i
            enc += [nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0 or conv_bias(norm))]
            enc += [norm_layer(norm, cout)] if i else []
            enc += [_activation(activation)]
            cin = cout
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(cin * s0 * s0, embed_dim))
        self.shape = (cin, s0, s0)
        dec: list[nn.Module] = [_activation(activation)]
        c = cin
        for _ in range(k - 1):  # back up, mirroring the encoder's channels; the last stage makes the image
            dec += [upsample2x(c, c // 2, upsample, conv_bias(norm)), norm_layer(norm, c // 2), _activation(activation)]
            c //= 2
        self.project = nn.Linear(embed_dim, cin * s0 * s0)
        self.decoder = nn.Sequential(*dec, upsample2x(c, in_channels, upsample, True))
        init_weights(self, init, init_gain)

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.in_channels, self.size, self.size) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_image(self, x)
        h = self.encoder(x)
        return self.decoder(self.project(h).view(x.shape[0], *self.shape)), h


@NETS.register("cluster_encoder")
class ClusterEncoder(_Trunk):
    """ClusterGAN's E (Mukherjee et al. 2018, arXiv:1809.03627): (B, in, size, size) -> (z_n (B, z_dim), cluster
    logits (B, clusters)).

    DCGAN D's trunk (strided 4x4 convs, LeakyReLU 0.2), a hidden Linear (``hidden`` wide, BatchNorm with
    ``norm: batch``, LeakyReLU; 0 leaves it out), then two linear heads: the continuous code and raw cluster
    logits (softmax belongs to the loss). The reference's E at 28 px: conv 64, conv 128, FC 1024.
    """

    smoke_args: ClassVar[dict] = {"base_channels": 4, "size": 16, "z_dim": 4, "clusters": 3, "hidden": 8}

    def __init__(self, in_channels: int = 1, size: int = 32, z_dim: int = 30, clusters: int = 10,
                 base_channels: int = 64, hidden: int = 1024, norm: Norm = "batch", spectral_norm: bool = False,
                 init: Init = "normal", init_gain: float = 0.02):
        super().__init__()
        if z_dim < 1 or clusters < 2 or hidden < 0:
            raise ValueError(f"ClusterEncoder needs z_dim >= 1, clusters >= 2 and hidden >= 0, got {z_dim}, "
                             f"{clusters}, {hidden}")
        self.in_channels, self.z_dim, self.clusters = in_channels, z_dim, clusters
        feat = self._build_trunk(in_channels, size, base_channels, norm, spectral_norm)
        self.hidden = nn.Sequential(
            self._sn(nn.Linear(feat, hidden, bias=norm != "batch")),
            nn.BatchNorm1d(hidden) if norm == "batch" else nn.Identity(),
            nn.LeakyReLU(0.2, True)) if hidden else nn.Identity()
        width = hidden or feat
        self.z_head, self.cluster_head = self._sn(nn.Linear(width, z_dim)), self._sn(nn.Linear(width, clusters))
        init_weights(self, init, init_gain)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self._features(x))
        return self.z_head(h), self.cluster_head(h)
