"""FID/KID for every model: the recipe's ``eval.fid`` during training, and ``i2i eval RUN --fid REAL_DIR``.

``eval: {fid: {real: DIR, samples: N, every: K}}`` scores the (EMA) generator every K steps on the main process,
on the same N latent draws (noise generators: gan, cgan, acgan, infogan) or the same inputs (translators: the first
N images of ``fid.input``; default: the recipe's test split of the source domain) each time, against the real
images of DIR (for a translator: the target domain's). It composes with the model's own scorer: the rest of the
``eval:`` section goes to the scorer the model names (``eval: {every: 500, fid: {...}}`` runs both; an ``eval:``
holding only ``fid`` runs FID alone). Logged: ``eval/fid``, ``eval/kid`` and ``eval/kid_std``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..arguments import check_arguments
from ..errors import I2IError, RecipeError
from .scoring import write_scores

log = logging.getLogger("i2i")
FIGURES = ("fid", "kid", "kid_std")


@dataclass
class FIDConfig:
    """The recipe's ``eval.fid`` section."""

    real: str                           # folder of real images (a translator's target domain), searched recursively
    samples: int = 1000                 # images generated per evaluation (translators: at most this many inputs)
    every: int = 1000
    input: str | None = None            # translators: source-domain images (default: data.root's test split)
    direction: str | None = None        # translators with several directions (CycleGAN): default the first
    size: int | None = None             # translators: inputs resized and centre-cropped to this (default data.size)
    real_images: int | None = None      # the first N real images by name; null: all
    weights: str | None = None          # Inception weights file (default $I2I_INCEPTION_WEIGHTS, the torch hub
    #                                     cache); 'random': untrained weights, for tests only (comparable with nothing)
    kid_subset_size: int = 1000         # capped at the image counts
    kid_subsets: int = 100
    batch_size: int = 50
    seed: int = 0


def default_inputs(recipe: dict, direction: str) -> str | None:
    """The test split's source-domain folder of the recipe's data: ``root/testA`` (unpaired) or ``root/test/A``
    (paired folders) for AtoB, B for BtoA; None when neither exists."""
    root = (recipe.get("data") or {}).get("root")
    if not isinstance(root, str) or direction not in ("AtoB", "BtoA"):
        return None
    side = direction[0]
    for folder in (Path(root) / f"test{side}", Path(root) / "test" / side):
        if folder.is_dir():
            return str(folder)
    return None


def _data_size(recipe: dict) -> int | None:
    size = (recipe.get("data") or {}).get("size")
    return size if isinstance(size, int) else None


def _pending_root(recipe: dict) -> bool:
    """The recipe's data is a demo data set not built yet (it is built on first use, after the recipe checks)."""
    data = recipe.get("data") or {}
    root = data.get("root")
    return isinstance(data.get("demo"), str) and isinstance(root, str) and not Path(root).exists()


def _pending(path: str, recipe: dict) -> bool:
    """A folder inside a demo data set that is built on first use (so it cannot exist at recipe time yet)."""
    root = (recipe.get("data") or {}).get("root")
    return _pending_root(recipe) and Path(root).resolve() in Path(path).resolve().parents


class FIDScorer:
    """FID/KID of the generator against ``eval.fid.real`` every ``eval.fid.every`` steps (main process)."""

    def __init__(self, config: FIDConfig, features, real_features: torch.Tensor | None, inputs: torch.Tensor | None,
                 net_names: list[str] | None):
        self.config, self.every, self.features = config, config.every, features
        self.real, self.inputs, self.net_names = real_features, inputs, net_names

    @staticmethod
    def check_config(cfg: Any, recipe: dict, *, file: str) -> None:
        if not isinstance(cfg, dict):
            raise RecipeError("eval.fid must be a mapping such as {real: data/x/testB, samples: 1000, every: 1000}",
                              file=file, key="eval.fid", value=cfg)
        check_arguments(FIDConfig, cfg, key="eval.fid", file=file)
        fc = FIDConfig(**cfg)
        for name in ("samples", "every", "size", "real_images", "kid_subset_size", "kid_subsets", "batch_size"):
            value = getattr(fc, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise RecipeError("must be a positive integer", file=file, key=f"eval.fid.{name}", value=value)
        if fc.samples < 2:
            raise RecipeError("FID needs at least 2 samples", file=file, key="eval.fid.samples", value=fc.samples)
        for key in ("real", "input"):
            path = getattr(fc, key)
            if path is not None and not Path(path).is_dir() and not _pending(path, recipe):
                raise RecipeError("no such folder", file=file, key=f"eval.fid.{key}", value=path)
        try:
            from .fid import _fidelity, resolve_weights
            _fidelity()
            resolve_weights(fc.weights, what="eval.fid.weights")
        except I2IError as exc:
            raise RecipeError(str(exc), file=file, key="eval.fid.weights") from None
        from ..registry import MODELS  # registered: validate_recipe imported the built-ins and plug-ins
        directions = getattr(MODELS.get(recipe["model"]["type"]), "directions", {}) or {}
        if directions:
            if fc.direction is not None and fc.direction not in directions:
                raise RecipeError("not a direction of this model", file=file, key="eval.fid.direction",
                                  value=fc.direction, choices=list(directions))
            direction = fc.direction or next(iter(directions))
            if fc.input is None and default_inputs(recipe, direction) is None and not _pending_root(recipe):
                raise RecipeError(f"this model translates images: name a folder of source-domain inputs ({direction})"
                                  ", or keep the data's test split at data.root/testA or data.root/test/A",
                                  file=file, key="eval.fid.input")

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> FIDScorer:
        from ..inference.export import chain_names
        from .fid import InceptionFeatures, folder_batches, folder_images, load_inputs
        config = FIDConfig(**recipe["eval"]["fid"])
        directions = getattr(type(parts.model), "directions", {}) or {}
        names, inputs = None, None
        if directions:
            direction = config.direction or next(iter(directions))
            names = chain_names(directions[direction])
        if not accelerator.is_main_process:  # only the main process scores
            return cls(config, None, None, None, names)
        features = InceptionFeatures(config.weights, accelerator.device)
        if features.weights == "random":
            log.warning("eval.fid.weights: random: FID/KID from an untrained Inception, comparable with nothing")
        if directions:
            folder = config.input or default_inputs(recipe, direction)
            if folder is None:
                raise I2IError(f"eval.fid.input: no source-domain folder ({direction}) in {recipe['data'].get('root')}")
            first = parts.model.nets[names[0]]
            channels = getattr(accelerator.unwrap_model(first), "in_channels", 3)
            inputs = load_inputs(folder, channels, config.size or _data_size(recipe), config.samples)
        files = folder_images(config.real, config.real_images)
        log.info("eval.fid: features of %d real images from %s", len(files), config.real)
        real = features.of_batches(folder_batches(files, config.batch_size))
        return cls(config, features, real, inputs, names)

    def _generator(self, model, emas: dict, accelerator) -> torch.nn.Module:
        from ..inference.export import Chain

        def net(name):
            return emas[name].module if name in emas else accelerator.unwrap_model(model.nets[name])

        names = self.net_names or ["g"]
        return net(names[0]) if len(names) == 1 else Chain([net(n) for n in names])

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        from .fid import fid_kid, generated_batches
        c = self.config
        g = self._generator(model, emas, accelerator)
        fake = self.features.of_batches(generated_batches(g, samples=c.samples, inputs=self.inputs,
                                                          batch_size=c.batch_size, seed=c.seed,
                                                          device=accelerator.device))
        figures = fid_kid(self.real, fake, kid_subset_size=c.kid_subset_size, kid_subsets=c.kid_subsets, seed=c.seed)
        logged = {f"eval/{k}": round(figures[k], 6) for k in FIGURES}
        write_scores(run_dir, step, logged, accelerator)
        return logged


class WithFID:
    """``eval.fid`` plus the model's own scorer (``inner``, given the rest of the ``eval:`` section)."""

    inner: type | None = None

    def __init__(self, scorers: list[tuple[Any, int]], max_steps: int):
        self.scorers, self.max_steps = scorers, max_steps
        self.every = math.gcd(*(s.every for s, _ in scorers))

    @staticmethod
    def _rest(cfg: dict) -> dict:
        return {k: v for k, v in cfg.items() if k != "fid"}

    @classmethod
    def check_config(cls, cfg: Any, recipe: dict, *, file: str) -> None:
        FIDScorer.check_config(cfg["fid"], recipe, file=file)
        rest = cls._rest(cfg)
        if rest and cls.inner is None:
            raise RecipeError(f"model '{recipe['model']['type']}' has no built-in evaluation besides eval.fid; "
                              "remove the other keys", file=file, key=f"eval.{next(iter(rest))}")
        if rest:
            cls.inner.check_config(rest, recipe, file=file)

    @classmethod
    def metric_names(cls, cfg: dict, recipe: dict) -> list[str] | None:
        """The eval/<name> figures logged (None: the model's scorer does not say which it logs)."""
        rest = cls._rest(cfg)
        if not rest:
            return list(FIGURES)
        inner = cls.inner.metric_names(rest, recipe) if hasattr(cls.inner, "metric_names") else None
        return None if inner is None else [*FIGURES, *inner]

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> WithFID:
        scorers = [(FIDScorer.for_recipe(recipe, parts, accelerator), 0)]
        rest = cls._rest(recipe["eval"])
        if rest:
            inner_recipe = type(recipe)({**recipe, "eval": rest})
            inner_recipe.source = getattr(recipe, "source", "<recipe>")
            scorers.append((cls.inner.for_recipe(inner_recipe, parts, accelerator), 1))
        return cls(scorers, recipe["train"]["max_steps"])

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        logged = {}
        for scorer, _ in self.scorers:
            if step % scorer.every == 0 or step == self.max_steps:
                logged.update(scorer.score(model, emas, run_dir, step, accelerator))
        return logged


def with_fid(inner: type | None) -> type:
    """The scorer class for an ``eval:`` section holding ``fid``, around the model's own scorer class."""
    return type(f"WithFID_{getattr(inner, '__name__', 'none')}", (WithFID,), {"inner": inner})


def evaluate_export_fid(export, real: str, *, samples: int = 10000, inputs: str | None = None,
                        direction: str | None = None, size: int | None = None, real_images: int | None = None,
                        weights: str | None = None, kid_subset_size: int = 1000, kid_subsets: int = 100,
                        batch_size: int = 50, seed: int = 0, device: str = "cpu") -> dict:
    """``i2i eval EXPORT --fid REAL_DIR``: FID/KID of any export's generator against a folder of real images."""
    from ..errors import check_count
    from .fid import InceptionFeatures, fid_kid, folder_batches, folder_images, generated_batches, load_inputs
    for flag, value in (("--fid-samples", samples), ("--fid-real-images", real_images), ("--fid-size", size)):
        check_count(flag, value)
    if samples < 2:
        raise I2IError(f"--fid-samples must be at least 2, got {samples}")
    features = InceptionFeatures(weights, device)  # first: a missing weights file fails before any work
    files = folder_images(real, real_images)
    source = None
    if export.meta.get("directions"):
        name, g = export.generator(direction)
        direction = direction or next(iter(export.meta["directions"]))
        source = inputs or default_inputs(export.recipe, direction)
        if source is None:
            raise I2IError(f"{export.path}: this generator translates images; pass --fid-input DIR (source-domain "
                           f"images for {direction}); the recipe's data.root has no test split to default to")
        x = load_inputs(source, getattr(g, "in_channels", 3), size or _data_size(export.recipe), samples)
    elif "g" in export.nets:
        g, x = export.nets["g"], None
    else:
        raise I2IError(f"{export.path}: no generator to score (model '{export.meta.get('model')}')")
    g = g.to(device)
    real_features = features.of_batches(folder_batches(files, batch_size))
    fake = features.of_batches(generated_batches(g, samples=samples, inputs=x, batch_size=batch_size, seed=seed,
                                                 device=device))
    figures = fid_kid(real_features, fake, kid_subset_size=kid_subset_size, kid_subsets=kid_subsets, seed=seed)
    return {"export": str(export.path), "model": export.meta.get("model"), **figures,
            "generated": len(fake), "real_images": len(real_features), "real": str(real),
            **({"input": source, "direction": direction} if source else {}), **features.describe()}

