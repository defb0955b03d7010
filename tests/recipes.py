"""Tiny recipes of the real models (a few channels, 32 px) for tests and the soak benchmark; no pytest here."""
from __future__ import annotations

from pathlib import Path

import yaml


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
                  "output_dir": str(out), "tensorboard": False, "report": False, **train},
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
                  "output_dir": str(out), "tensorboard": False, "report": False, **train},
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
                  "output_dir": str(out), "tensorboard": False, "report": False, **train},
    }


def write_recipe(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
