"""Shared fixtures: tiny real-looking image folders and tiny recipes (no downloads, no shared/ data)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

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


def tiny_pix2pix(root: Path, out: Path, **train) -> dict:
    return {
        "name": "tiny_pix2pix", "seed": 0,
        "data": {"type": "paired_folder", "root": str(root), "layout": "folders", "a_channels": 1, "b_channels": 3,
                 "size": 32, "load_size": 36, "flip": True, "batch_size": 2, "num_workers": 0},
        "model": {"type": "pix2pix"},
        "nets": {"g": {"type": "unet_generator", "in_channels": 1, "out_channels": 3, "base_channels": 8,
                       "depth": 4, "norm": "batch", "dropout": 0.5},
                 "d": {"type": "patchgan", "in_channels": 4, "base_channels": 8, "layers": 2, "norm": "batch"}},
        "losses": {"adv": {"type": "adversarial", "mode": "vanilla"}, "l1": {"type": "l1", "weight": 100.0}},
        "optim": {"g": {"type": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]},
                  "d": {"type": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]}},
        "schedule": {"type": "linear_decay", "constant_steps": 2, "decay_steps": 4},
        "train": {"max_steps": 4, "log_every": 2, "sample_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2,
                  "output_dir": str(out), "tensorboard": False, **train},
    }


def tiny_bicyclegan(root: Path, out: Path, *, shared_d: bool = False, batch_size: int = 4, **train) -> dict:
    """BicycleGAN on paired_root (gray A -> colour B), 32 px, tiny nets."""
    disc = {"type": "multiscale_patchgan", "in_channels": 3, "base_channels": 4, "layers": 2, "num_scales": 2,
            "norm": "instance"}
    adam = {"type": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]}
    recipe = {
        "name": "tiny_bicyclegan", "seed": 0,
        "data": {"type": "paired_folder", "root": str(root), "layout": "folders", "a_channels": 1, "b_channels": 3,
                 "size": 32, "load_size": 36, "flip": True, "batch_size": batch_size, "num_workers": 0},
        "model": {"type": "bicyclegan"},
        "nets": {"g": {"type": "unet_generator", "in_channels": 1, "out_channels": 3, "base_channels": 8,
                       "depth": 4, "norm": "instance", "dropout": 0.0, "z_dim": 4, "z_injection": "all"},
                 "e": {"type": "resnet_encoder", "in_channels": 3, "z_dim": 4, "base_channels": 8, "blocks": 3},
                 "d": dict(disc), "d2": dict(disc)},
        "losses": {"adv": {"type": "adversarial", "mode": "lsgan"}, "l1": {"type": "l1", "weight": 10.0},
                   "kl": {"type": "kl", "weight": 0.01}, "latent": {"type": "l1", "weight": 0.5}},
        "optim": {"g": dict(adam), "e": dict(adam), "d": dict(adam), "d2": dict(adam)},
        "train": {"max_steps": 4, "log_every": 2, "sample_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2,
                  "output_dir": str(out), "tensorboard": False, **train},
    }
    if shared_d:
        del recipe["nets"]["d2"], recipe["optim"]["d2"]
    return recipe


def tiny_cyclegan(root: Path, out: Path, **train) -> dict:
    gen = {"type": "resnet_generator", "in_channels": 3, "out_channels": 3, "base_channels": 4, "blocks": 1,
           "norm": "instance"}
    disc = {"type": "patchgan", "in_channels": 3, "base_channels": 4, "layers": 2, "norm": "instance"}
    return {
        "name": "tiny_cyclegan", "seed": 0,
        "data": {"type": "unpaired_folder", "root": str(root), "size": 32, "load_size": 36, "batch_size": 1,
                 "num_workers": 0},
        "model": {"type": "cyclegan", "pool_size": 3},
        "nets": {"g_ab": dict(gen), "g_ba": dict(gen), "d_a": dict(disc), "d_b": dict(disc)},
        "losses": {"adv": {"type": "adversarial", "mode": "lsgan"}, "cycle": {"type": "l1", "weight": 10.0},
                   "identity": {"type": "l1", "weight": 5.0}},
        "optim": {"g": {"type": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]},
                  "d": {"type": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]}},
        "ema": {"decay": 0.9},
        "train": {"max_steps": 4, "log_every": 2, "sample_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2,
                  "output_dir": str(out), "tensorboard": False, **train},
    }


def write_recipe(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory):
    """scikit-learn's digits as the demo builds them (class folders of 32 px PNGs), once per test session."""
    from i2i.data.demo import ensure_demo
    root = tmp_path_factory.mktemp("demo") / "digits"
    ensure_demo("digits", root)
    return root
