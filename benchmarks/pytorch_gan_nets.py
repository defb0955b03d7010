"""PyTorch-GAN's ACGAN nets (eriklindernoren/PyTorch-GAN, implementations/acgan/acgan.py), written out here.

They exist so that the ACGAN reference figure (0.63 s/iter at 32 px, batch 64) can be compared at equal math:
i2i's own ACGAN recipe uses DCGAN nets with about 7x fewer FLOPs per step. Recipes reach them by dotted path
(``type: benchmarks.pytorch_gan_nets:ACGANGenerator``), so i2i's ``acgan`` model trains them unchanged.

Same layers as PyTorch-GAN (BatchNorm eps 0.8 included), except that D returns raw logits for both heads (i2i's
losses take logits; PyTorch-GAN applies Sigmoid and Softmax and then BCELoss/CrossEntropyLoss, which costs the
same to within a few elementwise ops on (64, 1) and (64, 10) tensors).
"""
from __future__ import annotations

import torch
from torch import nn


class ACGANGenerator(nn.Module):
    """z * embed(y) -> Linear to 128 x s/4 x s/4 -> BN, (Upsample x2, Conv3x3, BN, LeakyReLU) x 2 -> Conv3x3 -> tanh."""

    def __init__(self, z_dim: int = 100, num_classes: int = 10, out_channels: int = 1, size: int = 32):
        super().__init__()
        self.z_dim, self.num_classes, self.out_channels, self.size = z_dim, num_classes, out_channels, size
        self.cat_codes, self.cont_codes, self.code_dim = [], 0, 0  # what i2i's latent sampling reads
        self.init_size = size // 4
        self.label_emb = nn.Embedding(num_classes, z_dim)
        self.l1 = nn.Sequential(nn.Linear(z_dim, 128 * self.init_size ** 2))
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, out_channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        out = self.l1(torch.mul(self.label_emb(y), z))
        return self.conv_blocks(out.view(out.shape[0], 128, self.init_size, self.init_size))


class ACGANDiscriminator(nn.Module):
    """(Conv3x3 stride 2, LeakyReLU, Dropout2d 0.25[, BN]) x 4 (16, 32, 64, 128 channels) -> adv and class logits."""

    def __init__(self, in_channels: int = 1, size: int = 32, num_classes: int = 10):
        super().__init__()
        self.in_channels, self.size, self.num_classes = in_channels, size, num_classes

        def block(cin: int, cout: int, bn: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                                       nn.Dropout2d(0.25)]
            return layers + [nn.BatchNorm2d(cout, 0.8)] if bn else layers

        self.conv_blocks = nn.Sequential(*block(in_channels, 16, bn=False), *block(16, 32), *block(32, 64),
                                         *block(64, 128))
        features = 128 * (size // 2 ** 4) ** 2
        self.adv_layer = nn.Linear(features, 1)
        self.aux_layer = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.conv_blocks(x).flatten(1)
        return {"adv": self.adv_layer(h), "class": self.aux_layer(h)}
