"""``eval:`` for generators of labels, codes or noise (gan, cgan, acgan, infogan): a classifier trained on the real
data scores class accuracy, Frechet distance in its feature space and diversity (``evaluation/conditional.py``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..arguments import check_arguments
from ..errors import RecipeError
from ..recipe import check_positive
from .scoring import write_scores

log = logging.getLogger("i2i")


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
        check_positive(ev, ("every", "per_class", "real_images"), "eval", file)
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
        from .coverage import model_measures, scalar_figures
        figures.update(model_measures(model, self.real, self.real_labels, accelerator.device))
        logged = {f"eval/{k}": round(v, 5) for k, v in scalar_figures(figures).items()}
        write_scores(run_dir, step, logged, accelerator)
        return logged
