"""A small CNN classifier: the evaluation measure of conditional generators (the ACGAN "MNIST classifier" score)."""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..registry import NETS, SizeRules


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                         nn.MaxPool2d(2))


@NETS.register("image_classifier")
class ImageClassifier(SizeRules, nn.Module):
    """CNN classifier (ACGAN's sample score, Odena et al. 2017): (B, in, H, W) in [-1, 1], H, W >= 8 -> (B, classes)."""

    smoke_args: ClassVar[dict] = {"base_channels": 4, "feature_dim": 8, "num_classes": 3, "size": 32}

    def __init__(self, in_channels: int = 1, size: int = 32, num_classes: int = 10, base_channels: int = 32,
                 feature_dim: int = 128, dropout: float = 0.25):
        super().__init__()
        if size < 8 or num_classes < 1 or not 0 <= dropout < 1:
            raise ValueError(f"need size >= 8, num_classes >= 1 and 0 <= dropout < 1, got {size}, {num_classes}, "
                             f"{dropout}")
        self.in_channels, self.size, self.num_classes, self.feature_dim = in_channels, size, num_classes, feature_dim
        c = base_channels
        self.body = nn.Sequential(_block(in_channels, c), _block(c, 2 * c), _block(2 * c, 4 * c),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * c, feature_dim), nn.ReLU(True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        # PyTorch's default (Kaiming-uniform) init: this is a classifier, not a GAN net

    SIZE_MULTIPLE, MIN_SIZE = 1, 8  # three 2x max-pools

    def example_inputs(self, batch: int = 2, size: int | None = None) -> tuple[torch.Tensor, ...]:
        side = max(size or self.size, 8)
        return (torch.rand(batch, self.in_channels, side, side) * 2 - 1,)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, feature_dim) penultimate features (after ReLU, before dropout)."""
        if not torch.jit.is_tracing() and min(x.shape[-2:]) < 8:
            raise ValueError(f"ImageClassifier needs H, W >= 8, got {tuple(x.shape[-2:])}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
