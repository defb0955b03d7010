"""Perceptual loss (Johnson et al. 2016; ESRGAN's form): distances between frozen VGG19 features.

Nothing is ever downloaded. ``weights: imagenet`` reads torchvision's ImageNet VGG19 file from the torch hub
cache (where ``torchvision.models.vgg19(weights='IMAGENET1K_V1')`` leaves it); a path reads that file;
``null`` keeps a random VGG (for tests only: it is not a perceptual loss, and says so loudly).
"""
from __future__ import annotations

import logging
import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg as tv_vgg

from ..errors import RecipeError
from ..registry import LOSSES, config_value

log = logging.getLogger(__name__)

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1
FETCH_COMMAND = "python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_weights_path() -> Path:
    """Where torchvision caches the ImageNet VGG19 weights: <torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


@lru_cache(maxsize=1)
def vgg19_layer_indices() -> dict[str, int]:
    """'conv1_1' ... 'conv5_4', 'relu1_1' ... 'relu5_4', 'pool1' ... 'pool5' -> index in ``vgg19().features``.

    Derived from torchvision's own VGG19 configuration ('E') the way ``make_layers`` expands it (conv, ReLU
    per number; max-pool per 'M'), so it cannot drift from the architecture; ``_build_features`` checks it.
    """
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for item in tv_vgg.cfgs["E"]:
        if item == "M":
            names[f"pool{block}"] = index
            index, block, conv = index + 1, block + 1, 0
        else:
            conv += 1
            names[f"conv{block}_{conv}"], names[f"relu{block}_{conv}"] = index, index + 1
            index += 2
    return names


def _build_features(last: int) -> nn.Sequential:
    """torchvision's VGG19 ``features`` (random init), truncated after index ``last``."""
    features = tv_vgg.make_layers(tv_vgg.cfgs["E"], batch_norm=False)
    for name, i in vgg19_layer_indices().items():  # the name map must describe the real modules
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        if not isinstance(features[i], kind):
            raise TypeError(f"torchvision's VGG19 layout changed: {name} is not at index {i}")
    return features[: last + 1]


def missing_weights_message(path: Path) -> str:
    return (f"the ImageNet VGG19 weights for the perceptual loss are not on this machine (nothing is downloaded "
            f"at run time). Put torchvision's file {path.name} at {path} - on a connected machine run "
            f"{FETCH_COMMAND} and copy <torch hub dir>/checkpoints/{path.name} here (torch.hub.get_dir() gives "
            f"the folder; TORCH_HOME moves it) - or set weights: /path/to/{path.name} (a state_dict of "
            f"torchvision's vgg19 or of its features)")


def _weights_file(weights: str | None, *, key: str, file: str | None = None) -> Path | None:
    """The file to load (None for random init); RecipeError when it does not exist."""
    if weights is None:
        return None
    if weights == "imagenet":
        path = imagenet_weights_path()
        if not path.is_file():
            raise RecipeError(missing_weights_message(path), file=file, key=key, value=weights)
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise RecipeError(f"VGG19 weights file not found; give 'imagenet' (uses {imagenet_weights_path()}), a "
                          f"path to a state_dict of torchvision's vgg19 (or its features), or null (random "
                          f"weights, tests only)", file=file, key=key, value=weights,
                          choices=["imagenet", "<path to a .pth file>", "null"])
    return path


def _load_features(features: nn.Sequential, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RecipeError(f"cannot load VGG19 weights from {path}: {exc}", key="weights", value=str(path)) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise RecipeError(f"{path} does not hold a state_dict", key="weights", value=str(path))
    if any(k.startswith("features.") for k in state):  # the whole vgg19: keep its features
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    wanted = features.state_dict()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise RecipeError(f"{path} is not a VGG19 state_dict: it lacks {', '.join(missing[:4])}", key="weights",
                          value=str(path))
    bad = [k for k in wanted if tuple(state[k].shape) != tuple(wanted[k].shape)]
    if bad:
        raise RecipeError(f"{path} is not a VGG19 state_dict: wrong shape for {', '.join(bad[:4])}", key="weights",
                          value=str(path))
    features.load_state_dict({k: state[k] for k in wanted})


@LOSSES.register("perceptual")
class PerceptualLoss(nn.Module):
    """weight * sum_l layer_weights[l] * criterion(VGG19_l(prediction), VGG19_l(target)) -> scalar.

    Images (B, 1 or 3, H, W) in [-1, 1] are mapped to [0, 1] and then to ImageNet statistics (gray is repeated
    to 3 channels). ESRGAN: ``{conv5_4: 1.0}`` (before the ReLU), L1. The VGG is truncated after the deepest
    requested layer, frozen (no parameter requires grad, so no optimizer or gradient ever touches it), and
    always in eval mode. Gradients flow to ``prediction``; ``target`` features are computed without grad.
    Loss modules are not checkpointed or exported; the weights come from ``weights`` again when rebuilt.
    """

    def __init__(self, layer_weights: dict | None = None, criterion: Literal["l1", "l2"] = "l1",
                 weight: float = 1.0, weights: str | None = "imagenet"):
        super().__init__()
        layer_weights = {"conv5_4": 1.0} if layer_weights is None else dict(layer_weights)
        _check_layers(layer_weights, key="layer_weights")
        path = _weights_file(weights, key="weights")
        self.weight, self.criterion, self.layer_weights = weight, criterion, layer_weights
        self.indices = {name: vgg19_layer_indices()[name] for name in layer_weights}
        self.vgg = _build_features(max(self.indices.values()))
        if path is not None:
            _load_features(self.vgg, path)
        else:
            log.warning("PERCEPTUAL LOSS WITH RANDOM VGG19 WEIGHTS (weights: null): this is NOT a real perceptual "
                        "loss and is meant for tests only; use weights: imagenet or a weights file")
        for m in self.vgg.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False  # a pre-activation feature (conv*_*) must survive the ReLU after it
        self.vgg.requires_grad_(False)
        self.vgg.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        layer_weights = config_value(cls, cfg, "layer_weights")
        if layer_weights is not None:
            _check_layers(layer_weights, key=f"{key}.layer_weights", file=file)
        _weights_file(config_value(cls, cfg, "weights"), key=f"{key}.weights", file=file)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # frozen feature extractor: never in training mode
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images (1 or 3 channels) -> 3-channel ImageNet-normalised input."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"the perceptual loss takes 1- or 3-channel images, got {x.shape[1]} channels")
        return ((x + 1) * 0.5 - self.mean) / self.std

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The requested VGG19 layers of images ``x`` in [-1, 1], by name."""
        wanted = {i: name for name, i in self.indices.items()}
        out: dict[str, torch.Tensor] = {}
        h = self.normalize(x)
        for i, layer in enumerate(self.vgg):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
        return out

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fake = self.features(prediction)
        with torch.no_grad():
            real = self.features(target.detach())
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        total = sum(w * distance(fake[name], real[name]) for name, w in self.layer_weights.items())
        return self.weight * total


def _check_layers(layer_weights: dict, *, key: str, file: str | None = None) -> None:
    names = vgg19_layer_indices()
    if not layer_weights:
        raise RecipeError("layer_weights needs at least one VGG19 layer", file=file, key=key, value=layer_weights,
                          choices=names)
    for name, w in layer_weights.items():
        if name not in names:
            raise RecipeError("unknown VGG19 layer", file=file, key=f"{key}.{name}", value=name, choices=names)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise RecipeError("layer weight must be a finite number >= 0", file=file, key=f"{key}.{name}", value=w)
