"""Does a translator reach the target domain? A domain classifier trained on the real domains judges its outputs.

For every translation model (``directions``: CycleGAN, DiscoGAN, DualGAN, UNIT; StarGAN passes its own translators
to ``evaluate_translation``), on the ``split`` images of ``data`` (root/<split>A/ + root/<split>B/, or one class
folder per domain):

- target_accuracy: share of translated images the classifier puts in the target domain (mean over directions;
  ``target_accuracy_<direction>`` for each);
- frechet_distance: FID's formula between the classifier's features of the translated images and of real images of
  the target domain (mean; ``frechet_distance_<direction>``);
- cycle_l1: mean |x - back(forward(x))| (images in [-1, 1]) over the directions whose inverse exists;
- domains: the domain names.

The classifier is any ``i2i classifier`` export whose classes include the domain names (``i2i classifier ROOT``
on an unpaired root trains one on classes A and B). CoGAN (``CoupledScorer``): one z gives a pair; with a
classifier of the classes both domains share (digits), pair_agreement is how often the two images of a pair get the
same class, pair_kappa the same corrected for chance (Cohen's kappa: a generator whose pairs are unrelated, or that
draws one class only, scores 0), and frechet_distance_<domain> compares each side with its real images.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..arguments import check_arguments
from ..errors import I2IError, RecipeError
from ..recipe import check_positive
from .scoring import write_scores

log = logging.getLogger("i2i")
Translate = Callable[[torch.Tensor], torch.Tensor]


def direction_domains(direction: str) -> tuple[str, str]:
    """'AtoB' -> ('A', 'B'); 'photo_to_ihc' -> ('photo', 'ihc')."""
    found = re.fullmatch(r"(.+?)_?to_?(.+)", direction)
    if not found:
        raise I2IError(f"direction '{direction}' does not name its domains as SOURCEtoTARGET (AtoB)")
    return found.group(1), found.group(2)


def as_input(x: torch.Tensor, channels: int, size: int | None = None) -> torch.Tensor:
    """Images for a net of ``channels`` inputs (gray <-> RGB as the data sets convert) and ``size`` pixels."""
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.repeat(1, channels, 1, 1)
        elif channels == 1:
            x = x[:, :3].mean(1, keepdim=True)
        else:
            raise I2IError(f"cannot show {x.shape[1]}-channel images to a classifier of {channels} channels")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


@torch.no_grad()
def _run(fn: Callable, x: torch.Tensor, device, batch: int = 64) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)])


class _Judge:
    """The classifier in eval mode: class predictions and features of images of any channel count and size."""

    def __init__(self, classifier: torch.nn.Module, device):
        self.net, self.device = classifier.eval(), device
        self.channels, self.size = classifier.in_channels, getattr(classifier, "size", None)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return _run(self.net, as_input(x, self.channels, self.size), self.device)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(1)

    def features(self, x: torch.Tensor) -> np.ndarray:
        return _run(self.net.features, as_input(x, self.channels, self.size), self.device).numpy().astype(np.float64)


def class_index(names: list[str], domain: str | list[str], where: str) -> int:
    """The classifier's index of ``domain``; an I2IError naming every missing one of a list of domains."""
    missing = [d for d in ([domain] if isinstance(domain, str) else domain) if d not in names]
    if missing:
        raise I2IError(f"{where}: the classifier knows classes {', '.join(names)} but not domain(s) "
                       f"{', '.join(missing)}; train one on the real domains: `i2i classifier DATA --output DIR` "
                       "(DATA: trainA/ + trainB/, or one folder per domain)")
    return names.index(domain) if isinstance(domain, str) else -1


@torch.no_grad()
def evaluate_translation(translators: dict[str, tuple[str, str, Translate]], classifier: torch.nn.Module,
                         class_names: list[str], images: dict[str, torch.Tensor], *, device="cpu",
                         batch: int = 32, where: str = "eval") -> dict:
    """``translators``: direction -> (source domain, target domain, images -> translated images); ``images``: real
    images per domain (N, C, H, W) in [-1, 1]."""
    from .conditional import frechet_distance
    class_index(class_names, sorted({d for s, t, _ in translators.values() for d in (s, t)}), where)
    judge = _Judge(classifier, device)
    out: dict = {"domains": sorted(images)}
    outputs: dict[str, torch.Tensor] = {}
    for direction, (source, target, translate) in translators.items():
        fake = _run(translate, images[source], device, batch)
        outputs[direction] = fake
        out[f"target_accuracy_{direction}"] = float(
            (judge.predict(fake) == class_index(class_names, target, where)).float().mean())
        out[f"frechet_distance_{direction}"] = frechet_distance(judge.features(images[target]), judge.features(fake))
    by_pair = {(s, t): d for d, (s, t, _) in translators.items()}
    cycles = [float((_run(translators[by_pair[(t, s)]][2], outputs[d], device, batch) - images[s]).abs().mean())
              for d, (s, t, _) in translators.items() if (t, s) in by_pair]
    for key in ("target_accuracy", "frechet_distance"):
        out[key] = float(np.mean([out[f"{key}_{d}"] for d in translators]))
    if cycles:
        out["cycle_l1"] = float(np.mean(cycles))
    return out


def domain_images(data: str, split: str, channels: dict[str, int], size: int, max_images: int | None,
                  ) -> dict[str, torch.Tensor]:
    """Real images of each domain (name -> channels), read from a labeled root whose classes are the domains."""
    from ..data.labeled import load_labeled_arrays
    out: dict[str, torch.Tensor] = {}
    for c in sorted(set(channels.values())):
        x, y, names = load_labeled_arrays(data, split, c, size)
        for domain in (d for d, k in channels.items() if k == c):
            rows = x[y == class_index(list(names), domain, f"{data} ({split})")]
            out[domain] = rows[:max_images] if max_images else rows
    return out


def _in_channels(net: torch.nn.Module) -> int:
    first = net.stages[0] if hasattr(net, "stages") else net
    return int(first.in_channels)


def model_translators(directions: dict, net: Callable[[str], torch.nn.Module]) -> dict[str, tuple[str, str, Translate]]:
    """The translators of a model's (or export's) ``directions``, each a chain of nets that ``net(name)`` gives."""
    from ..inference.export import Chain, chain_names
    return {d: (*direction_domains(d), Chain([net(n) for n in chain_names(spec)])) for d, spec in directions.items()}


def _train_mode(nets: list[torch.nn.Module]) -> list[bool]:
    modes = [n.training for n in nets]
    for n in nets:
        n.eval()
    return modes


@dataclass
class DomainEvalConfig:
    """The recipe's ``eval:`` section of a translation model: score it with a domain classifier while training."""

    classifier: str
    every: int = 500
    data: str | None = None          # root of the real domains (default: data.root), with a test split
    split: str = "test"
    max_images: int | None = 200     # the first N per domain (StarGAN on an attribute table: of the table)
    build_if_missing: bool = False   # train the classifier on data's train split first if it does not exist
    classifier_steps: int = 300
    classifier_size: int = 32        # the classifier built here sees images resized to this size
    classifier_batch_size: int = 32


def _check_eval(cfg, config_cls, recipe: dict, file: str):
    if not isinstance(cfg, dict):
        raise RecipeError("eval must be a mapping such as {classifier: runs/domain_classifier} or null", file=file,
                          key="eval", value=cfg)
    check_arguments(config_cls, cfg, key="eval", file=file)
    ev = config_cls(**cfg)
    check_positive(ev, tuple(k for k in ("every", "max_images", "classifier_steps", "samples", "classifier_size",
                                                  "classifier_batch_size")
                             if hasattr(ev, k)), "eval", file)
    if not ev.build_if_missing and not (Path(ev.classifier) / "meta.json").is_file():
        raise RecipeError("no classifier export here; train one with `i2i classifier DATA --output "
                          f"{ev.classifier}` or set eval.build_if_missing: true", file=file, key="eval.classifier",
                          value=ev.classifier)
    return ev


def load_judge(path: str | Path, device, *, multi_label: bool = False) -> tuple[torch.nn.Module, list[str]]:
    """An ``i2i classifier`` export's net and class names; an I2IError where its kind (single-label classes or
    multi-label attributes, ``meta.multi_label``) is not the one the scoring needs."""
    from ..inference.export import load_export
    export = load_export(path, device=device)
    if "classifier" not in export.nets:
        raise I2IError(f"{path}: not an `i2i classifier` export (it has no net 'classifier')")
    if bool(export.meta.get("multi_label")) != multi_label:
        got, want = (("multi-label (one 0/1 output per attribute)", "single-label classifier of the domains (class "
                      "folders)") if not multi_label else
                     ("single-label (one class per image)", "multi-label classifier of the attributes (trained by "
                      "`i2i classifier DATA` where DATA/train.csv is an attribute table)"))
        raise I2IError(f"{path}: this classifier is {got}; scoring this model needs a {want}")
    return export.nets["classifier"], [str(n) for n in export.meta.get("class_names") or []]


def _classifier(config, data: str, channels: int, size: int, accelerator, *, multi_label: bool = False):
    from .classifier import train_classifier
    if accelerator.is_main_process and not (Path(config.classifier) / "meta.json").is_file():
        log.info("eval: training the evaluation classifier on %s into %s", data, config.classifier)
        figures = train_classifier(data, config.classifier, channels=channels, size=size,
                                   steps=config.classifier_steps, batch_size=config.classifier_batch_size)
        log.info("eval: classifier test accuracy %.4f", figures["test_accuracy"])
    accelerator.wait_for_everyone()
    return load_judge(config.classifier, accelerator.device, multi_label=multi_label)


def _net_getter(model, emas: dict, accelerator) -> Callable[[str], torch.nn.Module]:
    def net(name: str) -> torch.nn.Module:
        return emas[name].module if name in emas else accelerator.unwrap_model(model.nets[name])
    return net


def _log(figures: dict, run_dir: Path, step: int, accelerator) -> dict:
    logged = {f"eval/{k}": round(v, 5) for k, v in figures.items() if isinstance(v, float)}
    write_scores(run_dir, step, logged, accelerator)
    return logged


class DomainScorer:
    """Target-domain accuracy, Frechet distance and cycle L1 of a translation model every ``eval.every`` steps."""

    def __init__(self, config: DomainEvalConfig, classifier, class_names: list[str], images: dict):
        self.config, self.every, self.classifier, self.class_names = config, config.every, classifier, class_names
        self.images = images

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        _check_eval(cfg, DomainEvalConfig, recipe, file)

    @staticmethod
    def metric_names(cfg: dict, recipe: dict) -> list[str]:
        """The eval/* figures logged (``train.keep_best`` may name one)."""
        from ..registry import MODELS
        directions = MODELS.get(recipe["model"]["type"]).directions
        pairs = {direction_domains(d) for d in directions}
        cycle = ["cycle_l1"] if any((t, s) in pairs for s, t in pairs) else []
        return ["target_accuracy", "frechet_distance", *cycle,
                *(f"{k}_{d}" for d in directions for k in ("target_accuracy", "frechet_distance"))]

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> DomainScorer:
        config = DomainEvalConfig(**recipe["eval"])
        data, size = config.data or recipe["data"]["root"], recipe["data"].get("size", 64)
        channels = {name.removeprefix("real_").upper(): c for name, c in parts.dataset.channels.items()}
        classifier, names = _classifier(config, data, max(channels.values()), config.classifier_size, accelerator)
        return cls(config, classifier, names, domain_images(data, config.split, channels, size, config.max_images))

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        translators = model_translators(model.directions, _net_getter(model, emas, accelerator))
        nets = [n for _, _, chain in translators.values() for n in chain.stages]
        modes = _train_mode(nets)
        try:
            figures = evaluate_translation(translators, self.classifier, self.class_names, self.images,
                                           device=accelerator.device)
        finally:
            for n, m in zip(nets, modes):
                n.train(m)
        return _log(figures, run_dir, step, accelerator)


def evaluate_export_translation(export, *, data: str | None = None, classifier: str | None = None,
                                split: str = "test", max_images: int | None = None, device="cpu") -> dict:
    """``i2i eval`` for an export with ``directions``: the figures above on ``data`` (default: the recipe's)."""
    ev = export.recipe.get("eval") or {}
    classifier = classifier or ev.get("classifier")
    data = data or ev.get("data") or export.recipe["data"]["root"]
    if not classifier:
        raise I2IError(f"no domain classifier: pass --classifier DIR (train one with `i2i classifier {data} "
                       "--output DIR --channels C --size S`)")
    judge, names = load_judge(classifier, device)
    translators = model_translators(export.meta["directions"], lambda n: export.nets[n].to(device))
    channels = {s: _in_channels(chain) for s, _, chain in translators.values()}
    channels |= {t: judge.in_channels for _, t, _ in translators.values() if t not in channels}
    size = export.recipe["data"].get("size") or judge.size
    for _, _, chain in translators.values():
        chain.eval()
    figures = evaluate_translation(translators, judge, names, domain_images(data, split, channels, size, max_images),
                                   device=device, where=str(classifier))
    return {"export": str(export.path), "classifier": str(classifier), "data": str(data), **figures}


# ------------------------------------------------------------------ CoGAN: pairs from one z
@torch.no_grad()
def evaluate_pairs(generators: dict[str, Translate], z_dim: int, classifier: torch.nn.Module,
                   real: dict[str, torch.Tensor], *, samples: int = 500, seed: int = 0, device="cpu") -> dict:
    """``generators``: domain -> z -> image (all driven by one z). Pair agreement and kappa of the classifier's
    classes between the first two domains, Frechet distance of each domain's samples to its real images."""
    from .conditional import frechet_distance
    judge = _Judge(classifier, device)
    z = torch.randn(samples, z_dim, generator=torch.Generator().manual_seed(seed))
    fakes = {d: _run(g, z, device) for d, g in generators.items()}
    a, b = (judge.predict(fakes[d]).numpy() for d in list(generators)[:2])
    k = max(int(a.max()), int(b.max())) + 1
    agreement = float((a == b).mean())
    chance = float((np.bincount(a, minlength=k) / len(a) * np.bincount(b, minlength=k) / len(b)).sum())
    out: dict = {"domains": list(generators), "samples": samples, "pair_agreement": agreement,
                 "pair_agreement_chance": chance, "pair_kappa": (agreement - chance) / max(1e-12, 1 - chance)}
    for d, fake in fakes.items():
        if d in real:
            out[f"frechet_distance_{d}"] = frechet_distance(judge.features(real[d]), judge.features(fake))
    fds = [v for key, v in out.items() if key.startswith("frechet_distance_")]
    if fds:
        out["frechet_distance"] = float(np.mean(fds))
    return out


@dataclass
class CoupledEvalConfig:
    """``eval:`` of a CoGAN recipe: a classifier of the classes both domains share (digits) scores the pairs."""

    classifier: str
    every: int = 500
    classifier_data: str | None = None  # labeled data whose classes both domains share, to train the classifier
    data: str | None = None             # root of the real domains (default: data.root) for the Frechet distances
    split: str = "test"
    max_images: int | None = 500
    samples: int = 500
    build_if_missing: bool = False
    classifier_steps: int = 300
    classifier_batch_size: int = 32


def coupled_generators(spec: dict, net: Callable[[str], torch.nn.Module]) -> dict[str, Translate]:
    from ..inference.export import Chain, chain_names
    return {d: Chain([net(n) for n in chain_names(names)]) for d, names in spec.items()}


class CoupledScorer:
    """Pair agreement and per-domain Frechet distance of a CoGAN every ``eval.every`` steps (main process)."""

    def __init__(self, config: CoupledEvalConfig, classifier, real: dict):
        self.config, self.every, self.classifier, self.real = config, config.every, classifier, real

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        ev = _check_eval(cfg, CoupledEvalConfig, recipe, file)
        if ev.build_if_missing and not ev.classifier_data and not (Path(ev.classifier) / "meta.json").is_file():
            raise RecipeError("building the classifier needs labeled data whose classes both domains share "
                              "(e.g. data/demo/digits_pair/classes)", file=file, key="eval.classifier_data",
                              value=None)

    @staticmethod
    def metric_names(cfg: dict, recipe: dict) -> list[str]:
        from ..registry import MODELS
        domains = list(getattr(MODELS.get(recipe["model"]["type"]), "coupled", {}))
        return ["pair_agreement", "pair_agreement_chance", "pair_kappa", "frechet_distance",
                *(f"frechet_distance_{d}" for d in domains)]

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> CoupledScorer:
        config = CoupledEvalConfig(**recipe["eval"])
        size = recipe["data"].get("size", 32)
        channels = {name.removeprefix("real_").upper(): c for name, c in parts.dataset.channels.items()}
        classifier, _ = _classifier(config, config.classifier_data, max(channels.values()), size, accelerator)
        real = domain_images(config.data or recipe["data"]["root"], config.split, channels, size, config.max_images)
        return cls(config, classifier, real)

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        gens = coupled_generators(model.coupled, _net_getter(model, emas, accelerator))
        nets = [n for chain in gens.values() for n in chain.stages]
        modes = _train_mode(nets)
        try:
            z_dim = next(iter(gens.values())).stages[0].z_dim
            figures = evaluate_pairs(gens, z_dim, self.classifier, self.real, samples=self.config.samples,
                                     device=accelerator.device)
        finally:
            for n, m in zip(nets, modes):
                n.train(m)
        return _log(figures, run_dir, step, accelerator)


def evaluate_export_coupled(export, *, data: str | None = None, classifier: str | None = None, split: str = "test",
                            max_images: int | None = None, samples: int = 500, seed: int = 0, device="cpu") -> dict:
    """``i2i eval`` for a CoGAN export: pair agreement (and kappa) and each domain's Frechet distance."""
    ev = export.recipe.get("eval") or {}
    classifier = classifier or ev.get("classifier")
    if not classifier:
        raise I2IError("no classifier: pass --classifier DIR, trained with `i2i classifier` on labeled data whose "
                       "classes both domains share")
    judge, _ = load_judge(classifier, device)
    gens = coupled_generators(export.meta["coupled"], lambda n: export.nets[n].to(device).eval())
    channels = {d: int(chain.stages[-1].out_channels) for d, chain in gens.items()}
    data = data or ev.get("data") or export.recipe["data"]["root"]
    real = domain_images(data, split, channels, export.recipe["data"].get("size", 32), max_images)
    figures = evaluate_pairs(gens, next(iter(gens.values())).stages[0].z_dim, judge, real,
                             samples=samples, seed=seed, device=device)
    return {"export": str(export.path), "classifier": str(classifier), "data": str(data), **figures}
