"""Sample grids: one row per sample, one column per visual (real_a | fake_b | real_b ...), saved as PNG."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image


def _rgb(t: torch.Tensor) -> torch.Tensor:
    """Show any channel count: gray is repeated, extra channels (alpha, bands) beyond the first 3 dropped."""
    c = t.shape[1]
    if c == 1:
        return t.repeat(1, 3, 1, 1)
    if c == 2:
        return t[:, :1].repeat(1, 3, 1, 1)
    return t[:, :3]


def save_grid(columns: list[torch.Tensor], path: Path) -> Path:
    """``columns``: tensors (B, C, H, W) in [-1, 1] with equal B, H, W."""
    cols = [_rgb(c.detach().float().cpu()) for c in columns]
    tiles = torch.stack(cols, 1).flatten(0, 1)  # sample-major: each row of the grid is one sample
    grid = make_grid((tiles + 1) / 2, nrow=len(cols), padding=2, pad_value=1.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    save_image(grid, str(tmp))
    os.replace(tmp, path)
    return path
