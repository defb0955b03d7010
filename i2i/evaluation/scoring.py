"""Scores logged during training (the recipe's ``eval:`` section) and by ``i2i eval``, chosen by the model.

A model names its scorer with a ``scorer`` class attribute (a ``module:Class`` string, imported when needed, so
models never import the metrics). A scorer class has ``check_config(cfg, recipe, file=)`` (recipe time),
``for_recipe(recipe, parts, accelerator)`` (build, main process does the heavy set-up) and
``score(model, emas, run_dir, step, accelerator) -> dict`` with an ``every`` attribute.
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import RecipeError
from ..registry import check_arguments, import_dotted

log = logging.getLogger("i2i")


def scorer_for(model) -> type | None:
    """The scorer class a model (class or instance) names, or None."""
    name = getattr(model, "scorer", None)
    return import_dotted(name) if isinstance(name, str) else name


def write_scores(run_dir: Path, step: int, logged: dict, accelerator) -> None:
    accelerator.log(logged, step=step)
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": step, **logged}) + "\n")
    print(f"step {step}: " + " ".join(f"{k}={v:.4g}" for k, v in logged.items()), file=sys.stderr, flush=True)


def _positive(cfg, names: tuple[str, ...], file: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, (int, float)) and value <= 0:
            raise RecipeError("must be positive", file=file, key=f"eval.{name}", value=value)


@dataclass
class EvalConfig:
    """The recipe's ``eval:`` section: score a conditional generator with a classifier during training."""

    classifier: str
    every: int = 500
    per_class: int = 50
    data: str | None = None          # labeled root for real images and classifier training (default: data.root)
    split: str = "test"
    real_images: int = 2000
    build_if_missing: bool = False   # train the classifier first if ``classifier`` does not exist yet
    classifier_steps: int = 600



class ClassifierScorer:
    """Classifier-based scores of a conditional or unconditional generator at ``eval.every`` steps (main process)."""

    def __init__(self, config, classifier, real: torch.Tensor, real_labels: torch.Tensor):
        self.config, self.every, self.classifier, self.real = config, config.every, classifier, real
        self.real_labels = real_labels

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        if not isinstance(cfg, dict):
            raise RecipeError("eval must be a mapping such as {classifier: runs/classifier} or null", file=file,
                              key="eval", value=cfg)
        check_arguments(EvalConfig, cfg, key="eval", file=file)
        ev = EvalConfig(**cfg)
        _positive(ev, ("every", "per_class", "real_images"), file)
        if not ev.build_if_missing and not (Path(ev.classifier) / "meta.json").is_file():
            raise RecipeError("no classifier export here; train one with `i2i classifier DATA --output "
                              f"{ev.classifier}` or set eval.build_if_missing: true", file=file,
                              key="eval.classifier", value=ev.classifier)

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> ClassifierScorer:
        from ..data.labeled import load_labeled_arrays
        from ..inference.export import load_export
        from .classifier import train_classifier
        config = EvalConfig(**recipe["eval"])
        data = config.data or recipe["data"]["root"]
        channels, size = parts.dataset.channels["real"], recipe["data"].get("size", 32)
        if accelerator.is_main_process and not (Path(config.classifier) / "meta.json").is_file():
            log.info("eval: training the evaluation classifier on %s into %s", data, config.classifier)
            figures = train_classifier(data, config.classifier, channels=channels, size=size,
                                       steps=config.classifier_steps)
            log.info("eval: classifier test accuracy %.4f", figures["test_accuracy"])
        accelerator.wait_for_everyone()
        classifier = load_export(config.classifier, device=accelerator.device).nets["classifier"]
        x, y, _ = load_labeled_arrays(data, config.split, channels, size)
        return cls(config, classifier, torch.as_tensor(x[: config.real_images]),
                   torch.as_tensor(y[: config.real_images]))

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        from .conditional import evaluate_generator
        g = emas["g"].module if "g" in emas else accelerator.unwrap_model(model.nets["g"])
        figures = evaluate_generator(g, self.classifier, self.real, real_labels=self.real_labels,
                                     per_class=self.config.per_class, device=accelerator.device)
        logged = {f"eval/{k}": round(v, 5) for k, v in figures.items() if isinstance(v, float)}
        write_scores(run_dir, step, logged, accelerator)
        return logged
