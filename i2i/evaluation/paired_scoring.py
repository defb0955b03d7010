"""Diversity and reconstruction scores of paired translators (pix2pix, BicycleGAN) during training and in eval.

The recipe's ``eval:`` section of a ``pix2pix``/``bicyclegan`` recipe (``PairedScorer``, named by the models'
``scorer`` attribute) scores the (EMA) generator every ``every`` steps on the main process, on the first
``max_images`` pairs of the test split; ``i2i eval EXPORT`` gives the same figures for an export. See
i2i/metrics/multimodal.py for what each figure means.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..arguments import check_arguments
from ..errors import RecipeError
from .scoring import write_scores


@dataclass
class PairedEvalConfig:
    """The recipe's ``eval:`` section for paired translators."""

    every: int = 500
    data: str | None = None            # paired data root (default: data.root), same layout as the training data
    split: str = "test"
    max_images: int | None = 16        # the first N pairs by name; null: all
    samples: int = 5                   # outputs per input for the diversity figures
    feature_weights: str | None = "auto"  # VGG19 for the feature-space figure: auto, imagenet, a path, or null


def evaluate_export_paired(export, *, data: str | None = None, split: str = "test", max_images: int | None = None,
                           samples: int = 5, seed: int = 0, feature_weights: str | None = "auto",
                           device="cpu") -> dict:
    """``i2i eval`` for a pix2pix/BicycleGAN export."""
    from ..errors import I2IError, check_count
    from .multimodal import FeatureSpace, evaluate_paired, load_pairs
    if not isinstance(samples, int) or samples < 2:
        raise I2IError(f"--samples must be at least 2 (diversity compares samples of one input), got {samples}")
    check_count("--max-images", max_images)
    pairs = load_pairs(export.recipe, data, split, max_images)
    figures = evaluate_paired(export.nets["g"], pairs, e=export.nets.get("e"), samples=samples, seed=seed,
                              device=device, features=FeatureSpace(feature_weights, device))
    return {"export": str(export.path), "model": export.meta.get("model"), **figures}


class PairedScorer:
    def __init__(self, config: PairedEvalConfig, pairs: list, features):
        self.config, self.every, self.pairs, self.features = config, config.every, pairs, features

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        if not isinstance(cfg, dict):
            raise RecipeError("eval must be a mapping such as {every: 500, samples: 5} or null", file=file, key="eval",
                              value=cfg)
        check_arguments(PairedEvalConfig, cfg, key="eval", file=file)
        ev = PairedEvalConfig(**cfg)
        for name in ("every", "max_images"):
            value = getattr(ev, name)
            if isinstance(value, int) and value <= 0:
                raise RecipeError("must be positive", file=file, key=f"eval.{name}", value=value)
        if not isinstance(ev.samples, int) or ev.samples < 2:
            raise RecipeError("diversity needs at least 2 samples per input", file=file, key="eval.samples",
                              value=ev.samples)
        if ev.feature_weights not in (None, "auto", "imagenet") and not Path(str(ev.feature_weights)).is_file():
            raise RecipeError("VGG19 weights file not found; use auto (ImageNet weights from the torch cache when "
                              "there, else an untrained VGG19), imagenet, null, or a path to vgg19 weights", file=file,
                              key="eval.feature_weights", value=ev.feature_weights)

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> PairedScorer:
        from .multimodal import FeatureSpace, load_pairs
        config = PairedEvalConfig(**recipe["eval"])
        pairs = load_pairs(recipe, config.data, config.split, config.max_images)
        return cls(config, pairs, FeatureSpace(config.feature_weights, accelerator.device))

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        from .multimodal import evaluate_paired

        def net(name):
            if name in emas:
                return emas[name].module
            return accelerator.unwrap_model(model.nets[name]) if name in model.nets else None

        figures = evaluate_paired(net("g"), self.pairs, e=net("e"), samples=self.config.samples,
                                  device=accelerator.device, features=self.features)
        logged = {f"eval/{k}": round(v, 5) for k, v in figures.items() if isinstance(v, float)}
        write_scores(run_dir, step, logged, accelerator)
        return logged
