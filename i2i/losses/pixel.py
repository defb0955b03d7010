"""Pixel-space distances: L1 (pix2pix reconstruction, CycleGAN cycle and identity) and MSE."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import LOSSES


@LOSSES.register("l1")
class L1Loss(nn.Module):
    """Weighted mean absolute error between two same-shaped tensors -> scalar."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * F.l1_loss(prediction, target)


@LOSSES.register("mse")
class MSELoss(nn.Module):
    """Weighted mean squared error between two same-shaped tensors -> scalar."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * F.mse_loss(prediction, target)
