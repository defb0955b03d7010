"""Shared fixtures: tiny real-looking image folders and tiny recipes (no downloads, no shared/ data)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .recipes import tiny_bicyclegan, tiny_cyclegan, tiny_pix2pix, write_recipe  # noqa: F401  (for the tests)

os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]


def photo_crops(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Crops of scikit-image's sample photos: real image statistics at test size."""
    from skimage import data
    rng = np.random.default_rng(seed)
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    out = []
    for i in range(n):
        p = photos[i % len(photos)]
        y, x = rng.integers(0, p.shape[0] - size * 4), rng.integers(0, p.shape[1] - size * 4)
        crop = p[y:y + size * 4:4, x:x + size * 4:4]  # 4x downsampled crop: more content per pixel
        out.append(np.ascontiguousarray(crop))
    return out


@pytest.fixture
def paired_root(tmp_path: Path) -> Path:
    """folders layout: train/A (gray) and train/B (colour), 10 pairs of 32x32."""
    root = tmp_path / "paired"
    for i, rgb in enumerate(photo_crops(10, 32)):
        for side, img in (("A", Image.fromarray(rgb).convert("L")), ("B", Image.fromarray(rgb))):
            (root / "train" / side).mkdir(parents=True, exist_ok=True)
            img.save(root / "train" / side / f"{i:03d}.png")
    return root


@pytest.fixture
def unpaired_root(tmp_path: Path) -> Path:
    root = tmp_path / "unpaired"
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        (root / domain).mkdir(parents=True)
        for i, rgb in enumerate(photo_crops(6 if domain == "trainA" else 8, 32, seed)):
            img = rgb if domain == "trainA" else rgb[..., ::-1]  # B: channel-swapped colours, a real domain shift
            Image.fromarray(np.ascontiguousarray(img)).save(root / domain / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory):
    """scikit-learn's digits as the demo builds them (class folders of 32 px PNGs), once per test session."""
    from i2i.data.demo import ensure_demo
    root = tmp_path_factory.mktemp("demo") / "digits"
    ensure_demo("digits", root)
    return root
