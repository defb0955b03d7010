"""Scores of the GANs that learn an encoder (AAE, BiGAN/ALI, VAE-GAN): what E learned, besides G's samples.

- ``reconstruction_l1``: mean absolute difference between x and G(E(x)) on the [0, 1] scale (E's mean code),
  over the scored split's real images; ``reconstruction_mse`` the mean squared difference, same scale.
- ``probe_accuracy``: a linear probe, the field's measure of a representation learned without labels (BiGAN):
  logistic regression (scikit-learn, standardised codes) fitted on E's codes of the train split's images and
  their labels, its accuracy on the scored split's codes. ``probe_train_images`` says on how many it was fitted.
- G's samples get the unconditional generator's figures from ``conditional.evaluate_generator``: Frechet
  distance in the evaluation classifier's feature space, and mode coverage (classes found among the samples and
  the KL of their class histogram from uniform; logged as ``mode_coverage`` and ``mode_kl``).

``EncoderScorer`` logs them every ``eval.every`` steps (``eval:`` as for the classifier scorer; the probe fits on
``eval.real_images`` images of the train split, drawn with a fixed seed); ``i2i eval`` prints them for an export.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .conditional_scoring import ClassifierScorer
from .scoring import write_scores


def _code(out) -> torch.Tensor:
    """E's mean code: the first element of (mu, logvar)."""
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def encode_images(e: nn.Module, x: torch.Tensor, *, batch: int = 256,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """E's mean codes (N, z_dim) of images (N, C, H, W) in [-1, 1], on the CPU."""
    return torch.cat([_code(e(x[i:i + batch].to(device).float())).float().cpu() for i in range(0, len(x), batch)])


@torch.no_grad()
def reconstruction_errors(e: nn.Module, g: nn.Module, x: torch.Tensor, *, batch: int = 256,
                          device: str | torch.device = "cpu") -> dict[str, float]:
    """L1 and MSE between x and G(E(x)), both on the [0, 1] scale."""
    l1 = mse = 0.0
    for i in range(0, len(x), batch):
        real = x[i:i + batch].to(device).float()
        diff = (g(_code(e(real)), None, None).float() - real) / 2  # [-1, 1] -> [0, 1] scale
        l1 += diff.abs().sum().item()
        mse += diff.pow(2).sum().item()
    n = max(1, x.numel())
    return {"reconstruction_l1": l1 / n, "reconstruction_mse": mse / n}


def linear_probe(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                 test_labels: np.ndarray, *, seed: int = 0) -> float:
    """Test accuracy of logistic regression fitted on standardised codes (the scaler fitted on the train codes)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    if len(np.unique(train_labels)) < 2:
        raise ValueError("the linear probe needs at least two classes among the train split's labels")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    probe.fit(train_codes, train_labels)
    return float((probe.predict(test_codes) == test_labels).mean())


def probe_subset(x: torch.Tensor, y: torch.Tensor, n: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images and labels drawn without replacement by a fixed seed: a split read from class folders is sorted
    by class, and its first ``n`` would hold a few classes only."""
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[pick], y[pick]


def evaluate_encoder(e: nn.Module, g: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                     test_y: torch.Tensor, *, device: str | torch.device = "cpu") -> dict[str, float | int]:
    """Reconstruction errors on ``test_x`` and the linear probe (fitted on the train codes, scored on the test ones),
    with both nets in eval mode (restored afterwards)."""
    modes = (e.training, g.training)
    e.eval()
    g.eval()
    try:
        out: dict[str, float | int] = dict(reconstruction_errors(e, g, test_x, device=device))
        train_codes = encode_images(e, train_x, device=device).numpy()
        test_codes = encode_images(e, test_x, device=device).numpy()
        out["probe_accuracy"] = linear_probe(train_codes, np.asarray(train_y), test_codes, np.asarray(test_y))
        out["probe_train_images"] = len(train_x)
    finally:
        e.train(modes[0])
        g.train(modes[1])
    return out


class EncoderScorer(ClassifierScorer):
    """The classifier scorer's figures for G's samples plus reconstruction error and the linear probe for E."""

    probe_train: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> EncoderScorer:
        from ..data.labeled import load_labeled_arrays
        scorer = super().for_recipe(recipe, parts, accelerator)
        config = scorer.config
        data = config.data or recipe["data"]["root"]
        x, y, _ = load_labeled_arrays(data, "train", parts.dataset.channels["real"], recipe["data"].get("size", 32))
        scorer.probe_train = probe_subset(x, y, config.real_images)
        return scorer

    def score(self, model, emas: dict, run_dir, step: int, accelerator) -> dict:
        from .conditional import evaluate_generator
        from .coverage import scalar_figures
        g, e = (emas[n].module if n in emas else accelerator.unwrap_model(model.nets[n]) for n in ("g", "e"))
        figures = evaluate_generator(g, self.classifier, self.real, real_labels=self.real_labels,
                                     per_class=self.config.per_class, device=accelerator.device)
        figures.update(evaluate_encoder(e, g, *self.probe_train, self.real, self.real_labels,
                                        device=accelerator.device))
        logged = {f"eval/{k}": round(v, 5) for k, v in scalar_figures(figures).items()}
        write_scores(run_dir, step, logged, accelerator)
        return logged
