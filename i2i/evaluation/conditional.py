"""Does a conditional generator work? A classifier trained on the real data judges its samples.

- class_accuracy: how often the classifier recognises the requested class (for InfoGAN, whose categorical code
  is unsupervised, after the best one-to-one matching of code values to classes: Hungarian algorithm).
- frechet_distance: Frechet distance between Gaussians fitted to the classifier's features of real and generated
  images (FID's formula, in a feature space that knows this data set).
- unconditional generators (no classes, no codes): confidence (the classifier's mean top probability: are the
  samples recognisable?), class_coverage (share of classes among the samples' predictions with at least half
  their fair share) and class_entropy (entropy of the predicted class histogram / log(classes); 1 = uniform).
- mode_coverage (every generator; evaluation/coverage.py): the histogram of predicted classes among the samples,
  the classes found in it and its KL divergence from uniform: few classes and a high KL mean mode collapse.
- diversity: mean per-pixel standard deviation among samples of one class (averaged over classes); with real labels,
  real_diversity is the same figure for the real images. A generator that ignores z scores near 0.
"""
from __future__ import annotations

import numpy as np
import torch

from ..codes import codes_for_rows, generate_images
from .coverage import matched_accuracy, mode_coverage


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) for feature matrices (N, F)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr((S_a S_b)^1/2) = sum of the square roots of the eigenvalues of S_a S_b (real, >= 0 for PSD matrices)
    eig = np.linalg.eigvals(s_a @ s_b)
    tr_covmean = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * tr_covmean)


@torch.no_grad()
def _batched(fn, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def within_class_diversity(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the per-pixel std among that class's images (images in [-1, 1])."""
    stds = [images[labels == k].float().std(0).mean().item() for k in labels.unique() if (labels == k).sum() > 1]
    return float(np.mean(stds)) if stds else 0.0


@torch.no_grad()
def evaluate_generator(g: torch.nn.Module, classifier: torch.nn.Module, real: torch.Tensor, *,
                       real_labels: torch.Tensor | None = None, per_class: int = 100, seed: int = 0,
                       device: str | torch.device = "cpu") -> dict:
    """Sample ``per_class`` images for every class (or categorical code value) and score them."""
    was_training = g.training
    g.eval()
    classifier.eval()
    gen = torch.Generator().manual_seed(seed)
    k = g.num_classes or (g.cat_codes[0] if g.cat_codes else 0)
    n_classes = getattr(classifier, "num_classes", None)
    if not k and not n_classes:
        raise ValueError("the classifier does not say how many classes it knows")
    # unconditional: as many samples as a conditional run would draw over the classifier's classes
    wanted = (torch.arange(k).repeat_interleave(per_class) if k else torch.zeros(per_class * n_classes,
                                                                                  dtype=torch.long)).to(device)
    fakes = []
    for i in range(0, len(wanted), 256):
        fakes.append(generate_images(g, codes_for_rows(g, wanted[i:i + 256], fixed=False, generator=gen)).float())
    fake = torch.cat(fakes)
    probs = _batched(classifier, fake).softmax(1)
    predicted = probs.argmax(1).cpu().numpy()
    wanted_np = wanted.cpu().numpy()
    out: dict = {"samples": int(len(fake))}
    n_classes = n_classes or int(predicted.max() + 1)
    out["mode_coverage"] = mode_coverage(predicted, n_classes)  # every generator: which classes its samples hit
    if not k:
        share = np.bincount(predicted, minlength=n_classes) / len(predicted)
        nonzero = share[share > 0]
        out.update(confidence=float(probs.max(1).values.mean()),
                   class_coverage=float((share >= 0.5 / n_classes).mean()),
                   class_entropy=float(-(nonzero * np.log(nonzero)).sum() / np.log(n_classes)))
        wanted = torch.as_tensor(predicted)  # diversity within the classes the samples were taken for
    elif g.num_classes:
        out["class_accuracy"] = float((predicted == wanted_np).mean())
    else:
        acc, mapping = matched_accuracy(wanted_np, predicted, k, n_classes)
        out.update(class_accuracy=acc, code_to_class=mapping)
    feats_fake = _batched(classifier.features, fake).cpu().numpy().astype(np.float64)
    feats_real = _batched(classifier.features, real.to(device).float()).cpu().numpy().astype(np.float64)
    out["frechet_distance"] = frechet_distance(feats_real, feats_fake)
    out["diversity"] = within_class_diversity(fake.cpu(), wanted.cpu())
    if real_labels is not None:
        out["real_diversity"] = within_class_diversity(real.cpu(), torch.as_tensor(real_labels).cpu())
    g.train(was_training)
    return out
