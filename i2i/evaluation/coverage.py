"""Mode coverage and clustering accuracy, judged by the evaluation classifier.

- mode_coverage: the histogram of the classes the classifier assigns to a generator's samples, how many classes
  it finds among them (a class counts when it holds at least a tenth of a fair share, 1% of the samples for 10
  classes, so a stray misclassified sample does not count) and KL(histogram || uniform) in nats: 0 when every
  class is equally frequent, log K (2.30 for 10 classes) when every sample is one class. Mode collapse, the
  field's best-known failure, shows as few classes found and a high KL.
- cluster_accuracy: the accuracy of unsupervised cluster ids on labeled images after the best one-to-one matching
  of clusters to classes (Hungarian algorithm, as InfoGAN's codes are matched).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

MIN_SHARE = 0.1  # of a fair share (1 / classes): a class holding less is not counted as found


def mode_coverage(predicted: np.ndarray, n_classes: int, *, min_share: float = MIN_SHARE) -> dict:
    """Classes found among predicted class ids, KL(histogram || uniform) and the histogram (counts per class)."""
    predicted = np.asarray(predicted, dtype=np.int64)
    if n_classes < 1 or not len(predicted):
        raise ValueError(f"mode coverage needs classes and samples, got {n_classes} classes, {len(predicted)} samples")
    counts = np.bincount(predicted, minlength=n_classes)[:n_classes]
    p = counts / max(1, counts.sum())
    nonzero = p[p > 0]
    kl = float(np.log(n_classes) + (nonzero * np.log(nonzero)).sum())
    return {"classes_found": int((p >= min_share / n_classes).sum()), "classes": int(n_classes),
            "kl_uniform": max(0.0, kl), "histogram": counts.tolist()}


def matched_accuracy(codes: np.ndarray, labels: np.ndarray, n_codes: int, n_labels: int) -> tuple[float, list[int]]:
    """Accuracy after mapping each code value to one class so that agreement is largest (Hungarian)."""
    counts = np.zeros((n_codes, n_labels), dtype=np.int64)
    np.add.at(counts, (codes, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    mapping = [-1] * n_codes
    for r, c in zip(rows, cols):
        mapping[r] = int(c)
    return float(counts[rows, cols].sum() / max(1, len(codes))), mapping


def cluster_accuracy(clusters: np.ndarray, labels: np.ndarray, n_clusters: int, n_classes: int) -> dict:
    """Accuracy of cluster ids against class labels after the best one-to-one matching, and the matching."""
    accuracy, mapping = matched_accuracy(np.asarray(clusters, dtype=np.int64), np.asarray(labels, dtype=np.int64),
                                         n_clusters, n_classes)
    return {"cluster_accuracy": accuracy, "cluster_to_class": mapping}


def model_measures(model, real, real_labels, device) -> dict:
    """The measures a model offers beyond its samples' (the scorer asks every model): ``eval_measures(real,
    generator)`` (BEGAN's M, EBGAN's energies) and ``cluster(images) -> logits`` (ClusterGAN: cluster_accuracy on
    the real images). Draws come from a private generator, so scoring never moves the training's RNG."""
    import torch
    out: dict = {}
    real = real.to(device).float()
    measures = getattr(model, "eval_measures", None)
    if callable(measures):
        out.update(measures(real, torch.Generator().manual_seed(0)))
    cluster = getattr(model, "cluster", None)
    if callable(cluster) and real_labels is not None:
        logits = cluster(real)
        labels = np.asarray(real_labels)
        out.update(cluster_accuracy(logits.argmax(1).cpu().numpy(), labels, logits.shape[1],
                                    max(int(labels.max()) + 1, 1)))
    return out


def scalar_figures(figures: dict) -> dict[str, float]:
    """The numbers a training log takes: floats as they are, mode_coverage as ``mode_coverage`` (classes found)
    and ``mode_kl`` (KL from uniform); lists and mappings (histograms, matchings) stay in ``i2i eval``'s JSON."""
    out = {k: float(v) for k, v in figures.items() if isinstance(v, float)}
    cov = figures.get("mode_coverage")
    if isinstance(cov, dict):
        out.update(mode_coverage=float(cov["classes_found"]), mode_kl=float(cov["kl_uniform"]))
    return out
