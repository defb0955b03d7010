"""Shared building blocks: norm and activation factories, weight init, the image pool."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Norm = Literal["batch", "instance", "none"]
Init = Literal["normal", "xavier", "kaiming", "orthogonal"]


def norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm (affine, running stats), InstanceNorm (no affine, no running stats, as in CycleGAN) or none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; valid: batch, instance, none")


def conv_bias(norm: str) -> bool:
    """A conv followed by an affine norm needs no bias of its own."""
    return norm != "batch"


def upsample2x(cin: int, cout: int, kind: str, bias: bool) -> nn.Module:
    """x2 upsampling: a 4x4 stride-2 transposed conv, or nearest resize + 3x3 conv ("resize")."""
    if kind == "transposed":
        return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias)
    if kind == "resize":  # nearest + conv avoids the checkerboard of overlapping transposed kernels
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1, bias=bias))
    raise ValueError(f"unknown upsample '{kind}'; valid: transposed, resize")


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """pix2pix/CycleGAN init: conv and linear weights by ``kind``, biases 0, BatchNorm weights N(1, gain)."""
    def apply(m: nn.Module) -> None:
        name = type(m).__name__
        if hasattr(m, "weight") and m.weight is not None and ("Conv" in name or "Linear" in name):
            if m.weight.numel() == 0:  # a layer of width 0 (a recipe error, reported by name where it is built)
                return
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown init '{kind}'; valid: normal, xavier, kaiming, orthogonal")
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    net.apply(apply)
    return net


class ImagePool:
    """History of generated images (Shrivastava et al. 2017), as in CycleGAN: D sees old fakes half the time.

    Uses the global torch RNG, which Accelerate saves and restores with every checkpoint.
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        self.images = [t.to(images.device) for t in self.images]  # after a resume from a CPU state
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i].to(image.device))
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [t.cpu() for t in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.images = list(state["images"])

    def to(self, device: torch.device) -> ImagePool:
        self.images = [t.to(device) for t in self.images]
        return self




def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear layer that lacks it."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import spectral_norm
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m)
    return module
