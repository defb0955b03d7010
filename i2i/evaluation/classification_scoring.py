"""``eval:`` for models whose product is a classifier (sgan): test accuracy of the classifier net on held-out
labeled images, during training and from an export (`i2i eval`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..arguments import check_arguments
from ..errors import I2IError, RecipeError
from ..recipe import check_positive
from .scoring import write_scores


@dataclass
class AccuracyConfig:
    """The recipe's ``eval:`` section: accuracy on the ``split`` of ``data`` (default: data.root) every N steps."""

    every: int = 500
    data: str | None = None
    split: str = "test"
    max_images: int = 10000


def evaluate_classifier(net, images: torch.Tensor, labels: torch.Tensor, num_classes: int, *,
                        device: str | torch.device = "cpu") -> dict:
    """accuracy (argmax over the K real classes) and per-class accuracy, net in eval mode (mode restored)."""
    from ..inference.classify import predict
    pred, _ = predict(net, images, num_classes, device=device)
    correct = (pred == labels).float()
    per_class = [float(correct[labels == k].mean()) if bool((labels == k).any()) else float("nan")
                 for k in range(num_classes)]
    return {"test_accuracy": float(correct.mean()), "test_images": len(labels),
            "worst_class_accuracy": min(a for a in per_class if a == a)}


class AccuracyScorer:
    """The classifier net's (``model.classifier_net``; its EMA copy if any) test accuracy every ``eval.every``
    steps, on the main process; prediction uses no random numbers, so resume equality is untouched."""

    def __init__(self, config: AccuracyConfig, images: torch.Tensor, labels: torch.Tensor, num_classes: int):
        self.config, self.every = config, config.every
        self.images, self.labels, self.num_classes = images, labels, num_classes

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        if not isinstance(cfg, dict):
            raise RecipeError("eval must be a mapping such as {every: 500} or null", file=file, key="eval", value=cfg)
        check_arguments(AccuracyConfig, cfg, key="eval", file=file)
        check_positive(AccuracyConfig(**cfg), ("every", "max_images"), "eval", file)

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> AccuracyScorer:
        from ..data.labeled import load_labeled_arrays
        config = AccuracyConfig(**recipe["eval"])
        data = config.data or recipe["data"]["root"]
        x, y, names = load_labeled_arrays(data, config.split, parts.dataset.channels["real"],
                                          recipe["data"].get("size", 32))
        return cls(config, torch.as_tensor(x[: config.max_images]), torch.as_tensor(y[: config.max_images]),
                   len(names))

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        name = model.classifier_net
        net = emas[name].module if name in emas else accelerator.unwrap_model(model.nets[name])
        figures = evaluate_classifier(net, self.images, self.labels, self.num_classes, device=accelerator.device)
        logged = {f"eval/{k}": round(v, 5) for k, v in figures.items() if isinstance(v, float)}
        write_scores(run_dir, step, logged, accelerator)
        return logged


def evaluate_export(export, *, data: str | None = None, split: str = "test", max_images: int | None = None,
                    device: str | torch.device = "cpu") -> dict:
    """`i2i eval` for a classifier export: accuracy on the ``split`` of ``data`` (default: the recipe's data.root)."""
    from ..data.labeled import load_labeled_arrays
    from ..inference.classify import classifier_of
    net, names = classifier_of(export)
    data = data or (export.recipe.get("data") or {}).get("root")
    if not data:
        raise I2IError(f"{export.path}: pass --data (labeled class folders or .npz); the recipe names none")
    if export.meta.get("multi_label"):  # `i2i classifier` on an attribute table: accuracy per attribute
        return {"export": str(export.path), "data": str(data), "split": split,
                **_attribute_figures(net.to(device), names, data, split, max_images, device)}
    x, y, data_names = load_labeled_arrays(data, split, int(net.in_channels), int(net.size))
    if list(data_names) != list(names):
        raise I2IError(f"--data {data}: its classes ({', '.join(map(str, data_names[:12]))}) are not the export's "
                       f"({', '.join(names[:12])})")
    x, y = x[:max_images], y[:max_images]
    figures = evaluate_classifier(net.to(device), torch.as_tensor(x), torch.as_tensor(y), len(names), device=device)
    return {"export": str(export.path), "data": str(data), "split": split, **figures}


@torch.no_grad()
def _attribute_figures(net, names: list[str], data: str, split: str, max_images: int | None, device) -> dict:
    """A multi-label classifier's test_accuracy (mean over attributes) and attribute_accuracy on root/<split>.csv."""
    from ..data.domains import load_attribute_arrays
    from .classifier import attribute_accuracy
    x, a, _ = load_attribute_arrays(data, split, int(net.in_channels), int(net.size), names)
    x, a = x[:max_images], a[:max_images]
    was_training = net.training
    net.eval()
    try:
        logits = torch.cat([net(x[i:i + 256].to(device)).float().cpu() for i in range(0, len(x), 256)])
    finally:
        net.train(was_training)
    return {**attribute_accuracy(logits, a, names), "test_images": len(x)}
