"""``eval:`` and ``i2i eval`` for StarGAN: the domain classifier's measures of ``domain_scoring`` over every
ordered pair of domains (G told the target's one-hot label), plus figures per target domain.

- ``target_accuracy_to_<domain>``: share of images translated from the other domains into <domain> that the
  classifier puts there (mean over the source domains); ``frechet_distance_to_<domain>`` likewise;
- ``target_accuracy``, ``frechet_distance``: means over the ordered pairs; ``cycle_l1``: mean |x - G(G(x, t), s)|,
  StarGAN's reconstruction, over the pairs; ``domains``: the names;
- ``i2i eval`` also prints each pair's figures (``target_accuracy_<source>_to_<target>``...).

The classifier is an ``i2i classifier`` export trained on the domain folders (``eval.build_if_missing`` trains it).
Multi-label exports (an attribute table) are not scored: that needs a multi-label classifier.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import I2IError, RecipeError
from .domain_scoring import (
    DomainEvalConfig,
    DomainScorer,
    Translate,
    _classifier,
    _log,
    _net_getter,
    domain_images,
    evaluate_translation,
)


def label_translators(g: torch.nn.Module, domains: list[str]) -> dict[str, tuple[str, str, Translate]]:
    """``<source>_to_<target>`` -> (source, target, x -> G(x, one-hot target)) for every ordered pair."""
    def to(k: int) -> Translate:
        c = F.one_hot(torch.tensor(k), len(domains)).float()
        return lambda x: g(x, c.to(x.device, x.dtype).expand(len(x), -1))
    return {f"{s}_to_{t}": (s, t, to(j)) for i, s in enumerate(domains) for j, t in enumerate(domains) if i != j}


@torch.no_grad()
def evaluate_stargan(g: torch.nn.Module, domains: list[str], classifier: torch.nn.Module, class_names: list[str],
                     images: dict[str, torch.Tensor], *, device="cpu", where: str = "eval") -> dict:
    """The module docstring's figures for generator ``g`` on real ``images`` per domain."""
    figures = evaluate_translation(label_translators(g, domains), classifier, class_names, images, device=device,
                                   where=where)
    for t in domains:
        for key in ("target_accuracy", "frechet_distance"):
            figures[f"{key}_to_{t}"] = float(np.mean([figures[f"{key}_{s}_to_{t}"] for s in domains if s != t]))
    figures["domains"] = list(domains)
    return figures


def _check_single_label(data: str, split: str, where: str) -> None:
    if (Path(data) / f"{split}.csv").is_file():
        raise I2IError(f"{where}: {data} has an attribute table ({split}.csv): StarGAN's measures need a folder per "
                       "domain and a single-label domain classifier; multi-label models are not scored")


class StarGANScorer(DomainScorer):
    """Target-domain accuracy (overall and per domain), Frechet distance and cycle L1 of StarGAN's G."""

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        DomainScorer.check_config(cfg, recipe, file=file)
        ev = DomainEvalConfig(**cfg)
        data = ev.data or recipe["data"].get("root")
        for split, key in ((ev.split, "eval.split"), (recipe["data"].get("split", "train"), "data.root")):
            try:
                _check_single_label(str(data), split, "eval")
            except I2IError as exc:
                raise RecipeError(str(exc), file=file, key=key, value=data) from None

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> StarGANScorer:
        config = DomainEvalConfig(**recipe["eval"])
        data, size = config.data or recipe["data"]["root"], recipe["data"].get("size", 128)
        channels = parts.dataset.channels["real"]
        classifier, names = _classifier(config, data, channels, size, accelerator)
        images = domain_images(data, config.split, dict.fromkeys(parts.model.domains, channels), size,
                               config.max_images)
        return cls(config, classifier, names, images)

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        g = _net_getter(model, emas, accelerator)("g")
        was_training = g.training
        g.eval()
        try:
            figures = evaluate_stargan(g, model.domains, self.classifier, self.class_names, self.images,
                                       device=accelerator.device)
        finally:
            g.train(was_training)
        pairs = {f"{k}_{s}_to_{t}" for s in model.domains for t in model.domains
                 for k in ("target_accuracy", "frechet_distance")}
        return _log({k: v for k, v in figures.items() if k not in pairs}, run_dir, step, accelerator)


def evaluate_export_stargan(export, *, data: str | None = None, classifier: str | None = None, split: str = "test",
                            max_images: int | None = None, device="cpu") -> dict:
    """``i2i eval`` for a StarGAN export: the figures above on ``data`` (default: the recipe's)."""
    from ..inference.export import load_export
    ev = export.recipe.get("eval") or {}
    classifier = classifier or ev.get("classifier")
    data = data or ev.get("data") or export.recipe["data"]["root"]
    if not classifier:
        raise I2IError(f"no domain classifier: pass --classifier DIR (train one with `i2i classifier {data} "
                       "--output DIR --channels C --size S`)")
    if export.meta.get("multi_label"):
        raise I2IError(f"{export.path}: a multi-label (attribute) StarGAN export; its measures need a single-label "
                       "domain classifier and a folder per domain, so it is not scored")
    _check_single_label(data, split, "--data")
    judge = load_export(classifier, device=device)
    g = export.nets["g"].to(device).eval()
    size = export.recipe["data"].get("size") or judge.nets["classifier"].size
    domains = list(export.meta["domains"])
    figures = evaluate_stargan(g, domains, judge.nets["classifier"], list(judge.meta.get("class_names") or []),
                               domain_images(data, split, dict.fromkeys(domains, g.in_channels), size, max_images),
                               device=device, where=str(classifier))
    return {"export": str(export.path), "classifier": str(classifier), "data": str(data), **figures}
