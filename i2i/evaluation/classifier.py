"""The evaluation classifier: trained on the real labeled data by `i2i classifier`, saved like any export.

Class folders or an .npz give a single-label classifier (cross-entropy, softmax over the classes); an attribute table
(DATA/train.csv, the multi-label layout of ``data/domains.py``) gives a multi-label one: one logit per attribute,
binary cross-entropy, attribute k predicted present when its logit is > 0. Its export says ``multi_label: true``
and lists the attributes as ``class_names`` (in the table's order).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import I2IError
from ..inference.export import write_export
from ..recipe import Recipe


def _shift(x: torch.Tensor, g: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Random translation by up to ``pixels``: cheap augmentation that stops the classifier memorising."""
    dy, dx = (int(v) for v in torch.randint(-pixels, pixels + 1, (2,), generator=g))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def attribute_accuracy(logits: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict:
    """Multi-label figures: ``test_accuracy`` (mean over attributes of the share of images whose attribute is
    predicted right, logit > 0 meaning present) and ``attribute_accuracy`` per attribute name."""
    per = ((logits > 0).float() == labels.float()).float().mean(0)
    return {"test_accuracy": float(per.mean()), "attribute_accuracy": {n: float(a) for n, a in zip(names, per)}}


def _load(data: str, split: str, channels: int, size: int, multi_label: bool, names: list[str] | None = None):
    from ..data.domains import load_attribute_arrays
    from ..data.labeled import load_labeled_arrays
    if multi_label:
        return load_attribute_arrays(data, split, channels, size, names)
    return load_labeled_arrays(data, split, channels, size)


def _test_split(data: str, channels: int, size: int, multi_label: bool, names: list[str]):
    """The test split, or None where there is none (the caller holds out training images)."""
    from ..data.domains import has_table
    if multi_label:
        return _load(data, "test", channels, size, True, names) if has_table(data, "test") else None
    try:
        return _load(data, "test", channels, size, False)
    except Exception:  # no test split
        return None


def train_classifier(data: str, output: str | Path, *, channels: int = 1, size: int = 32, steps: int = 600,
                     batch_size: int = 128, lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                     labeled_fraction: float | None = None, labels_per_class: int | None = None,
                     label_seed: int = 0, net: dict | None = None) -> dict:
    """Train ``image_classifier`` on the train split of a labeled root; score it on the test split. An attribute
    table (DATA/train.csv) trains a multi-label classifier (module docstring); ``test_accuracy`` is then the mean
    over attributes and ``attribute_accuracy`` gives each.

    ``labeled_fraction`` / ``labels_per_class`` / ``label_seed`` train on the labeled subset a semi-supervised
    recipe with the same ``data.*`` values uses (``data.labeled.labeled_subset``): the supervised baseline of SGAN.
    ``net``: other ``image_classifier`` arguments (base_channels, feature_dim, dropout), e.g. SGAN's D's.
    """
    from ..data.domains import has_table
    from ..data.labeled import labeled_subset
    from ..nets.classifier import ImageClassifier

    torch.manual_seed(seed)
    torch.set_flush_denormal(True)
    multi_label = Path(data).is_dir() and has_table(data, "train")
    if multi_label and (labeled_fraction is not None or labels_per_class is not None):
        raise I2IError(f"{data} has an attribute table (train.csv): a multi-label classifier trains on every "
                       "label; --labeled-fraction and --labels-per-class pick labels per class of class folders")
    x, y, names = _load(data, "train", channels, size, multi_label)
    test = _test_split(data, channels, size, multi_label, list(names))
    if test is not None:
        x_test, y_test, _ = test
    else:  # no test split: hold out every 10th training image
        keep = torch.arange(len(x)) % 10 != 0
        x_test, y_test, x, y = x[~keep], y[~keep], x[keep], y[keep]
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    subset = None if multi_label else labeled_subset(y.numpy(), len(names), labeled_fraction=labeled_fraction,
                                                     labels_per_class=labels_per_class, label_seed=label_seed)
    if subset is not None:
        x, y = x[torch.from_numpy(subset)], y[torch.from_numpy(subset)]
    cfg = {"type": "image_classifier", **(net or {}), "in_channels": channels, "size": size,
           "num_classes": len(names)}
    net = ImageClassifier(**{k: v for k, v in cfg.items() if k != "type"}).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_of = F.binary_cross_entropy_with_logits if multi_label else F.cross_entropy
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = loss_of(net(_shift(x[idx], g).to(device)), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        xt = torch.as_tensor(x_test)
        logits = torch.cat([net(xt[i:i + 512].to(device)).float().cpu() for i in range(0, len(xt), 512)])
    if multi_label:
        scores = attribute_accuracy(logits, torch.as_tensor(y_test), list(names))
    else:
        scores = {"test_accuracy": float((logits.argmax(1) == torch.as_tensor(y_test)).float().mean())}
    accuracy = scores["test_accuracy"]
    recipe = Recipe.of({"name": "classifier", "nets": {"classifier": cfg}, "model": {"type": "classifier"},
                        "data": {"root": str(data), "channels": channels, "size": size}}, "classifier")
    meta = {"kind": "classifier", "task": "classification", "classifier_net": "classifier", "model": "classifier",
            "directions": {}, "class_names": list(names), "multi_label": multi_label, **scores, "steps": steps,
            "train_images": len(x)}
    write_export(recipe, {"classifier": net.state_dict()}, Path(output), meta)
    per_attribute = {"attribute_accuracy": {k: round(v, 4) for k, v in scores["attribute_accuracy"].items()}
                     } if multi_label else {}
    return {"classifier": str(output), "test_accuracy": round(accuracy, 4), **per_attribute,
            "train_images": len(x), "test_images": len(x_test), "steps": steps,
            "seconds": round(time.perf_counter() - t0, 2)}
