"""Scores of a paired translator (pix2pix, BicycleGAN) on held-out pairs: diversity and reconstruction.

- ``diversity``: mean pairwise distance between the ``samples`` outputs for the same input, in pixel space
  (mean absolute difference of [0, 1] images), averaged over inputs. BicycleGAN draws z ~ N(0, I) per sample;
  pix2pix's only noise is dropout, kept active here (as the reference's test.py does without --eval), the rest
  of the net in eval mode. A translator that ignores its noise scores 0.
- ``diversity_features``: the same in a VGG19 feature space, LPIPS-style (channel-normalised relu1_2, relu2_2,
  relu3_4, relu4_4, squared differences averaged over positions, summed over channels, averaged over layers).
  ImageNet weights when given or in the torch cache; otherwise an untrained VGG19 with seed 0 (``feature_space``
  says which; compare figures only within one feature space).
- ``reconstruction_l1``: L1 ([0, 1] scale) between G's output and the real B, with z = E(B)'s mean for
  BicycleGAN (the encoded style) and the deterministic net for pix2pix; ``reconstruction_l1_random``: the same
  with random z (for BicycleGAN, the encoded z must do better: that is what E learned).
"""
from __future__ import annotations

import contextlib
import logging
from itertools import combinations

import torch
from torch import nn

log = logging.getLogger("i2i")

FEATURE_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")


class FeatureSpace:
    """VGG19 features for LPIPS-style distances (no learned linear layers)."""

    def __init__(self, weights: str | None = "auto", device: str | torch.device = "cpu"):
        from ..losses.perceptual import PerceptualLoss, imagenet_weights_path
        if weights == "auto":
            weights = "imagenet" if imagenet_weights_path().is_file() else None
        layers = dict.fromkeys(FEATURE_LAYERS, 1.0)
        if weights is None:
            self.name = "vgg19-random-init-seed0"
            with _quiet(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self.net = PerceptualLoss(layers, weights=None)
        else:
            self.name = "vgg19-imagenet" if weights == "imagenet" else f"vgg19:{weights}"
            self.net = PerceptualLoss(layers, weights=weights)
        self.net.to(device).eval()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.net.features(x.float())
        return [f / (f.norm(dim=1, keepdim=True) + 1e-10) for f in (feats[n] for n in FEATURE_LAYERS)]

    @staticmethod
    def distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        """(B,) distances between two batches' features."""
        return torch.stack([(fa - fb).pow(2).sum(1).mean((1, 2)) for fa, fb in zip(a, b)]).mean(0)


@contextlib.contextmanager
def _quiet():
    logger = logging.getLogger("i2i")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the random-weights warning is meant for training recipes, not this metric
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def dropout_active(net: nn.Module):
    """Eval mode except dropout layers (pix2pix's noise source at test time)."""
    was = net.training
    net.eval()
    drops = [m for m in net.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    for m in drops:
        m.train()
    try:
        yield len(drops)
    finally:
        net.train(was)


def _pixel_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x - y).abs() * 0.5).flatten(1).mean(1)  # [-1, 1] differences on the [0, 1] scale


@torch.no_grad()
def evaluate_paired(g: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]], *, e: nn.Module | None = None,
                    samples: int = 5, seed: int = 0, device: str | torch.device = "cpu",
                    features: FeatureSpace | None = None, batch_size: int = 8) -> dict:
    """Diversity and reconstruction figures (module docstring) over ``pairs`` of (A, B), each (C, H, W) in [-1, 1]."""
    if samples < 2:
        raise ValueError(f"diversity needs at least 2 samples per input, got {samples}")
    if not pairs:
        raise ValueError("no image pairs to score")
    z_dim = int(getattr(g, "z_dim", 0))
    gen = torch.Generator().manual_seed(seed)
    div_pix, div_feat, rec, rec_random = [], [], [], []
    was = [(net, net.training) for net in (g, e) if net is not None]
    for net, _ in was:
        net.eval()
    try:
        for start in range(0, len(pairs), batch_size):
            a = torch.stack([p[0] for p in pairs[start:start + batch_size]]).to(device)
            b = torch.stack([p[1] for p in pairs[start:start + batch_size]]).to(device)
            n = a.shape[0]
            outs = []
            if z_dim:
                for _ in range(samples):
                    outs.append(g(a, torch.randn(n, z_dim, generator=gen).to(device)).float())
                mu = e(b)[0] if e is not None else torch.zeros(n, z_dim, device=device)
                rec.append(_pixel_distance(g(a, mu).float(), b))
                rec_random.append(_pixel_distance(outs[0], b))
            else:
                with dropout_active(g), torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed + start)
                    outs = [g(a).float() for _ in range(samples)]
                rec.append(_pixel_distance(g(a).float(), b))
            feats = [features(o) for o in outs] if features is not None else None
            pairs_ij = list(combinations(range(samples), 2))
            div_pix.append(torch.stack([_pixel_distance(outs[i], outs[j]) for i, j in pairs_ij]).mean(0))
            if feats is not None:
                div_feat.append(torch.stack([FeatureSpace.distance(feats[i], feats[j]) for i, j in pairs_ij]).mean(0))
    finally:
        for net, mode in was:
            net.train(mode)
    figures: dict = {"diversity": float(torch.cat(div_pix).mean()), "reconstruction_l1": float(torch.cat(rec).mean())}
    if div_feat:
        figures["diversity_features"] = float(torch.cat(div_feat).mean())
        figures["feature_space"] = features.name if features is not None else None
    if rec_random:
        figures["reconstruction_l1_random"] = float(torch.cat(rec_random).mean())
    figures.update({"images": len(pairs), "samples": samples,
                    "noise": "z ~ N(0, I)" if z_dim else "dropout (eval mode otherwise)"})
    return figures


def load_pairs(recipe: dict, root: str | None = None, split: str = "test", max_images: int | None = None) -> list:
    """(A, B) tensors of a paired data set built from the recipe's data section: whole images resized to
    data.size, no flips or crops, the first ``max_images`` pairs by name."""
    from ..registry import DATASETS
    cfg = {k: v for k, v in recipe["data"].items()
           if k in ("root", "layout", "direction", "a_channels", "b_channels", "size", "demo", "on_error")}
    cfg.update({"split": split, "load_size": None, "flip": False})
    if root is not None:
        cfg["root"] = root
    ds = DATASETS.get(recipe["data"]["type"])(**cfg)
    count = len(ds) if max_images is None else min(max_images, len(ds))
    out = []
    for i in range(count):
        item = ds[(i, 0)]
        out.append((item["real_a"], item["real_b"]))
    return out
