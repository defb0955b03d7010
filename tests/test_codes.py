"""The latent-code helpers (i2i.codes): z, labels and InfoGAN codes drive a generator; class grids."""
from __future__ import annotations

import torch

import i2i.nets  # noqa: F401  (registers the built-in nets)
from i2i.codes import class_grid, generate_images, sample_latent
from i2i.nets import MLPGenerator

from .test_mlp_timm_nets import TINY_G


def test_mlp_nets_drive_the_conditional_sampling_code() -> None:
    torch.manual_seed(0)
    g = MLPGenerator(num_classes=3, size=16, **TINY_G).eval()
    codes = sample_latent(g, 4, "cpu")
    assert codes["z"].shape == (4, 8) and codes["y"].shape == (4,) and codes["c"] is None
    img = generate_images(g, codes)
    assert img.shape == (4, 1, 16, 16) and img.abs().max() <= 1
    cols = class_grid(g, torch.arange(3), torch.randn(2, 8))
    assert len(cols) == 2 and all(col.shape == (3, 1, 16, 16) for col in cols)
    info = MLPGenerator(cat_codes=[4], cont_codes=2, size=16, **TINY_G).eval()  # InfoGAN-style codes
    codes = sample_latent(info, 4, "cpu")
    assert codes["y"] is None and codes["c"].shape == (4, 6)
    assert generate_images(info, codes).shape == (4, 1, 16, 16)
