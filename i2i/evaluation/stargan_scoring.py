"""``eval:`` and ``i2i eval`` for StarGAN, judged by an ``i2i classifier`` export trained on the real data.

Domain folders (single-label): the domain classifier's measures of ``domain_scoring`` over every ordered pair of
domains (G told the target's one-hot label), plus figures per target domain.

- ``target_accuracy_to_<domain>``: share of images translated from the other domains into <domain> that the
  classifier puts there (mean over the source domains); ``frechet_distance_to_<domain>`` likewise;
- ``target_accuracy``, ``frechet_distance``: means over the ordered pairs; ``cycle_l1``: mean |x - G(G(x, t), s)|,
  StarGAN's reconstruction, over the pairs; ``domains``: the names;
- ``i2i eval`` also prints each pair's figures (``target_accuracy_<source>_to_<target>``...).

Attribute table (multi-label), judged by a multi-label classifier (``i2i classifier`` on the attribute table): each
real image x with attributes a and each attribute j gives the target t = a with bit j flipped and y = G(x, t).

- ``target_accuracy``: share of the (image, j) whose attribute j the classifier reads on y as t_j;
  ``target_accuracy_<attr>`` for each attribute j;
- ``attributes_kept``: share of the other attributes (k != j) the classifier reads on y as it reads them on x
  (an edit should leave them alone; absent with one attribute);
- ``frechet_distance``: between the classifier's features of all outputs and of the real images;
- ``cycle_l1``: mean |x - G(y, a)|; ``domains``: the attribute names.

The classifier is an ``i2i classifier`` export trained on the same kind of data (``eval.build_if_missing`` trains
it on the data's train split): domain folders give a single-label one, an attribute table a multi-label one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.domains import has_table, load_attribute_arrays
from ..errors import I2IError, RecipeError
from .domain_scoring import (
    DomainEvalConfig,
    DomainScorer,
    Translate,
    _classifier,
    _Judge,
    _log,
    _net_getter,
    domain_images,
    evaluate_translation,
    load_judge,
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


def _check_kind(data: str, split: str, multi_label: bool, where: str) -> None:
    """The scored data is of the model's kind: an attribute table root/<split>.csv for a multi-label model, domain
    folders for a single-label one."""
    if has_table(data, split) == multi_label:
        return
    if multi_label:
        raise I2IError(f"{where}: {Path(data) / f'{split}.csv'} does not exist; a multi-label (attribute) StarGAN is "
                       f"scored on an attribute table root/{split}.csv (header file,<attr>,...)")
    raise I2IError(f"{where}: {data} has an attribute table ({split}.csv), but this StarGAN learned domain folders; "
                   f"it is scored on domain folders (root/{split}/<domain>/)")


def attribute_columns(class_names: list[str], attributes: list[str], where: str) -> list[int]:
    """The classifier's output of each of the model's attributes; an I2IError naming both lists if one is missing."""
    missing = [a for a in attributes if a not in class_names]
    if missing:
        raise I2IError(f"{where}: the classifier knows attributes {', '.join(class_names) or '(none)'} but the model "
                       f"edits {', '.join(attributes)} (missing: {', '.join(missing)}); train one on the model's "
                       "attribute table: `i2i classifier DATA --output DIR` (DATA/train.csv)")
    return [class_names.index(a) for a in attributes]


def _translate(g: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, device, batch: int) -> torch.Tensor:
    return torch.cat([g(x[i:i + batch].to(device), c[i:i + batch].to(device, x.dtype)).float().cpu()
                      for i in range(0, len(x), batch)])


@torch.no_grad()
def evaluate_stargan_attributes(g: torch.nn.Module, attributes: list[str], classifier: torch.nn.Module,
                                class_names: list[str], images: torch.Tensor, labels: torch.Tensor, *,
                                device="cpu", batch: int = 32, where: str = "eval") -> dict:
    """The module docstring's multi-label figures for ``g`` on real ``images`` (N, C, H, W) in [-1, 1] with their
    0/1 ``labels`` (N, K), K = len(attributes)."""
    from .conditional import frechet_distance
    columns = attribute_columns(class_names, attributes, where)
    judge = _Judge(classifier, device)

    def read(x: torch.Tensor) -> torch.Tensor:
        return judge.logits(x)[:, columns] > 0

    a, k = labels.float(), len(attributes)
    seen = read(images)
    out: dict = {"domains": list(attributes), "images": len(images)}
    kept, cycles, features = [], [], []
    for j, name in enumerate(attributes):
        t = a.clone()
        t[:, j] = 1 - t[:, j]
        y = _translate(g, images, t, device, batch)
        read_y = read(y)
        out[f"target_accuracy_{name}"] = float((read_y[:, j] == t[:, j].bool()).float().mean())
        others = [m for m in range(k) if m != j]
        kept.append((read_y[:, others] == seen[:, others]).float().reshape(-1))
        cycles.append(float((_translate(g, y, a, device, batch) - images).abs().mean()))
        features.append(judge.features(y))
    out["target_accuracy"] = float(np.mean([out[f"target_accuracy_{n}"] for n in attributes]))
    if k > 1:
        out["attributes_kept"] = float(torch.cat(kept).mean())
    out["frechet_distance"] = frechet_distance(judge.features(images), np.concatenate(features))
    out["cycle_l1"] = float(np.mean(cycles))
    return out


class StarGANScorer(DomainScorer):
    """Target accuracy (overall and per domain or attribute), Frechet distance and cycle L1 of StarGAN's G."""

    @staticmethod
    def check_config(cfg: dict, recipe: dict, *, file: str) -> None:
        DomainScorer.check_config(cfg, recipe, file=file)
        ev = DomainEvalConfig(**cfg)
        root = str(recipe["data"].get("root"))
        multi_label = has_table(root, recipe["data"].get("split", "train"))
        try:
            _check_kind(str(ev.data or root), ev.split, multi_label, "eval")
        except I2IError as exc:
            raise RecipeError(str(exc), file=file, key="eval.data" if ev.data else "eval.split",
                              value=ev.data or ev.split) from None

    @staticmethod
    def metric_names(cfg: dict, recipe: dict) -> list[str] | None:
        """The figures logged, where ``data.attributes`` names the domains (else they are known once data is read)."""
        names = recipe["data"].get("attributes")
        if not names:
            return None
        if has_table(str(recipe["data"].get("root")), recipe["data"].get("split", "train")):
            return ["target_accuracy", "frechet_distance", "cycle_l1", *(["attributes_kept"] if len(names) > 1 else []),
                    *(f"target_accuracy_{n}" for n in names)]
        return ["target_accuracy", "frechet_distance", "cycle_l1",
                *(f"{k}_to_{n}" for n in names for k in ("target_accuracy", "frechet_distance"))]

    @classmethod
    def for_recipe(cls, recipe, parts, accelerator) -> StarGANScorer:
        config = DomainEvalConfig(**recipe["eval"])
        data, size = config.data or recipe["data"]["root"], recipe["data"].get("size", 128)
        channels, model = parts.dataset.channels["real"], parts.model
        classifier, names = _classifier(config, data, channels, size, accelerator, multi_label=model.multi_label)
        if model.multi_label:
            x, a, _ = load_attribute_arrays(data, config.split, channels, size, list(model.domains))
            return cls(config, classifier, names, (x[:config.max_images], a[:config.max_images]))
        images = domain_images(data, config.split, dict.fromkeys(model.domains, channels), size, config.max_images)
        return cls(config, classifier, names, images)

    def score(self, model, emas: dict, run_dir: Path, step: int, accelerator) -> dict:
        g = _net_getter(model, emas, accelerator)("g")
        was_training = g.training
        g.eval()
        try:
            if model.multi_label:
                figures = evaluate_stargan_attributes(g, model.domains, self.classifier, self.class_names,
                                                      *self.images, device=accelerator.device)
            else:
                figures = evaluate_stargan(g, model.domains, self.classifier, self.class_names, self.images,
                                           device=accelerator.device)
        finally:
            g.train(was_training)
        pairs = {f"{k}_{s}_to_{t}" for s in model.domains for t in model.domains
                 for k in ("target_accuracy", "frechet_distance")}
        return _log({k: v for k, v in figures.items() if k not in pairs}, run_dir, step, accelerator)


def evaluate_export_stargan(export, *, data: str | None = None, classifier: str | None = None, split: str = "test",
                            max_images: int | None = None, device="cpu") -> dict:
    """``i2i eval`` for a StarGAN export: the figures above on ``data`` (default: the recipe's); ``max_images``:
    the first N per domain (folders) or of the table."""
    ev = export.recipe.get("eval") or {}
    classifier = classifier or ev.get("classifier")
    data = data or ev.get("data") or export.recipe["data"]["root"]
    multi_label = bool(export.meta.get("multi_label"))
    if not classifier:
        raise I2IError(f"no {'attribute' if multi_label else 'domain'} classifier: pass --classifier DIR (train one "
                       f"with `i2i classifier {data} --output DIR --channels C --size S`)")
    _check_kind(data, split, multi_label, "--data")
    judge, names = load_judge(classifier, device, multi_label=multi_label)
    g = export.nets["g"].to(device).eval()
    size = export.recipe["data"].get("size") or judge.size
    domains = list(export.meta["domains"])
    if multi_label:
        x, a, _ = load_attribute_arrays(data, split, g.in_channels, size, domains)
        figures = evaluate_stargan_attributes(g, domains, judge, names, x[:max_images], a[:max_images], device=device,
                                              where=str(classifier))
    else:
        figures = evaluate_stargan(g, domains, judge, names,
                                   domain_images(data, split, dict.fromkeys(domains, g.in_channels), size, max_images),
                                   device=device, where=str(classifier))
    return {"export": str(export.path), "classifier": str(classifier), "data": str(data), **figures}
