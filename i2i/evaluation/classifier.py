"""The evaluation classifier: trained on the real labeled data by `i2i classifier`, saved like any export."""
from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..inference.export import write_export
from ..recipe import Recipe


def _shift(x: torch.Tensor, g: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Random translation by up to ``pixels``: cheap augmentation that stops the classifier memorising."""
    dy, dx = (int(v) for v in torch.randint(-pixels, pixels + 1, (2,), generator=g))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def train_classifier(data: str, output: str | Path, *, channels: int = 1, size: int = 32, steps: int = 600,
                     batch_size: int = 128, lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                     labeled_fraction: float | None = None, labels_per_class: int | None = None,
                     label_seed: int = 0, net: dict | None = None) -> dict:
    """Train ``image_classifier`` on the train split of a labeled root; score it on the test split.

    ``labeled_fraction`` / ``labels_per_class`` / ``label_seed`` train on the labeled subset a semi-supervised
    recipe with the same ``data.*`` values uses (``data.labeled.labeled_subset``): the supervised baseline of SGAN.
    ``net``: other ``image_classifier`` arguments (base_channels, feature_dim, dropout), e.g. SGAN's D's.
    """
    from ..data.labeled import labeled_subset, load_labeled_arrays
    from ..nets.classifier import ImageClassifier

    torch.manual_seed(seed)
    torch.set_flush_denormal(True)
    x, y, names = load_labeled_arrays(data, "train", channels, size)
    try:
        x_test, y_test, _ = load_labeled_arrays(data, "test", channels, size)
    except Exception:  # no test split: hold out every 10th training image
        keep = torch.arange(len(x)) % 10 != 0
        x_test, y_test, x, y = x[~keep], y[~keep], x[keep], y[keep]
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    subset = labeled_subset(y.numpy(), len(names), labeled_fraction=labeled_fraction,
                            labels_per_class=labels_per_class, label_seed=label_seed)
    if subset is not None:
        x, y = x[torch.from_numpy(subset)], y[torch.from_numpy(subset)]
    cfg = {"type": "image_classifier", **(net or {}), "in_channels": channels, "size": size,
           "num_classes": len(names)}
    net = ImageClassifier(**{k: v for k, v in cfg.items() if k != "type"}).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = F.cross_entropy(net(_shift(x[idx], g).to(device)), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        xt = torch.as_tensor(x_test)
        pred = torch.cat([net(xt[i:i + 512].to(device)).argmax(1).cpu() for i in range(0, len(xt), 512)])
    accuracy = float((pred == torch.as_tensor(y_test)).float().mean())
    recipe = Recipe.of({"name": "classifier", "nets": {"classifier": cfg}, "model": {"type": "classifier"},
                        "data": {"root": str(data), "channels": channels, "size": size}}, "classifier")
    meta = {"kind": "classifier", "task": "classification", "classifier_net": "classifier", "model": "classifier",
            "directions": {}, "class_names": list(names), "test_accuracy": accuracy, "steps": steps,
            "train_images": len(x)}
    write_export(recipe, {"classifier": net.state_dict()}, Path(output), meta)
    return {"classifier": str(output), "test_accuracy": round(accuracy, 4), "train_images": len(x),
            "test_images": len(x_test), "steps": steps, "seconds": round(time.perf_counter() - t0, 2)}
