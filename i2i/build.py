"""Recipe -> parts: validate the whole recipe first, then build nets, losses, model, data and optimizers."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn

from .errors import RecipeError
from .models.base import GANModel as GANModelBase
from .optim import OPTIMIZERS, SCHEDULES, build_optimizer
from .recipe import Recipe
from .registry import DATASETS, LOSSES, MODELS, NETS, check_arguments, load_plugins

LOADER_KEYS = ("batch_size", "num_workers", "pin_memory", "persistent_workers", "prefetch_factor")


@dataclass
class TrainConfig:
    """The recipe's ``train:`` section."""

    max_steps: int = 1000
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    allow_slow_precision: bool = False
    log_every: int = 50
    sample_every: int = 500
    sample_count: int = 4
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    output_dir: str | None = None
    grad_clip: float | None = None
    tensorboard: bool = True
    cpu: bool = False
    cpu_threads: int | None = None  # CPU training: intra-op threads per process (default: cores / local processes)


@dataclass
class LoaderConfig:
    """The loader keys of the recipe's ``data:`` section (the rest configures the data set)."""

    batch_size: int = 1
    num_workers: int = 2
    pin_memory: bool | None = None
    persistent_workers: bool = True
    prefetch_factor: int | None = None


@dataclass
class EMAConfig:
    """The recipe's ``ema:`` section: exponential moving average of the exported generators."""

    decay: float = 0.999
    start_step: int = 0


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


@dataclass
class Parts:
    recipe: Recipe
    model: Any
    nets: dict[str, nn.Module]
    losses: dict[str, nn.Module]
    dataset: Any
    train: TrainConfig
    loader: LoaderConfig
    ema: EMAConfig | None
    optimizers: dict = field(default_factory=dict)


def _import_builtins() -> None:
    from . import data, losses, models, nets  # noqa: F401  (registration by import)


def _split_data(recipe: dict) -> tuple[dict, dict]:
    data = recipe["data"]
    return ({k: v for k, v in data.items() if k not in LOADER_KEYS},
            {k: v for k, v in data.items() if k in LOADER_KEYS})


def _positive(cfg: Any, names: tuple[str, ...], key: str, file: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, (int, float)) and value <= 0:
            raise RecipeError("must be positive", file=file, key=f"{key}.{name}", value=value)


def validate_recipe(recipe: Recipe) -> None:
    """Check every section, type, argument name and cross-field rule; nothing is built or read."""
    _import_builtins()
    file = recipe.source
    load_plugins(recipe.get("plugins"), file=file)

    data_cfg, loader_cfg = _split_data(recipe)
    check_arguments(LoaderConfig, loader_cfg, key="data", file=file)
    _positive(LoaderConfig(**loader_cfg), ("batch_size",), "data", file)
    data_cls = DATASETS.check(data_cfg, key="data", file=file)
    model_cls = MODELS.check(recipe["model"], key="model", file=file, provided=("nets", "losses"))

    def check_names(section: str, required: tuple, optional: tuple = ()) -> None:
        got = recipe[section] or {}
        for name in required:
            if name not in got:
                raise RecipeError(f"model '{recipe['model']['type']}' needs {section}.{name}", file=file,
                                  key=f"{section}.{name}", choices=required)
        for name in got:
            if name not in required + optional:
                raise RecipeError(f"model '{recipe['model']['type']}' has no {section[:-1] if section != 'optim' else 'optimizer group'} of this name",
                                  file=file, key=f"{section}.{name}", value=name, choices=required + optional)

    check_names("nets", model_cls.nets_required)
    check_names("losses", model_cls.losses_required, model_cls.losses_optional)
    check_names("optim", tuple(model_cls.optim_groups))
    for name, cfg in recipe["nets"].items():
        NETS.check(cfg, key=f"nets.{name}", file=file)
    for name, cfg in recipe["losses"].items():
        LOSSES.check(cfg, key=f"losses.{name}", file=file)
    for name, cfg in recipe["optim"].items():
        OPTIMIZERS.check(cfg, key=f"optim.{name}", file=file, provided=("params",))
        if isinstance(cfg.get("lr"), (int, float)) and cfg["lr"] <= 0:
            raise RecipeError("learning rate must be positive", file=file, key=f"optim.{name}.lr", value=cfg["lr"])
    if recipe.get("schedule") is not None:
        SCHEDULES.check(recipe["schedule"], key="schedule", file=file)
    if recipe.get("ema") is not None:
        if not isinstance(recipe["ema"], dict):
            raise RecipeError("ema must be a mapping such as {decay: 0.999} or null", file=file, key="ema",
                              value=recipe["ema"])
        check_arguments(EMAConfig, recipe["ema"], key="ema", file=file)
        decay = EMAConfig(**recipe["ema"]).decay
        if not 0 < decay < 1:
            raise RecipeError("decay must be between 0 and 1", file=file, key="ema.decay", value=decay)
    if recipe.get("eval") is not None:
        check_arguments(EvalConfig, recipe["eval"], key="eval", file=file)
        ev = EvalConfig(**recipe["eval"])
        _positive(ev, ("every", "per_class", "real_images"), "eval", file)
        if not hasattr(model_cls, "export_info") or model_cls.export_info is GANModelBase.export_info:
            raise RecipeError(f"model '{recipe['model']['type']}' has no classifier-based evaluation", file=file,
                              key="eval")
        if not ev.build_if_missing and not (Path(ev.classifier) / "meta.json").is_file():
            raise RecipeError("no classifier export here; train one with `i2i classifier DATA --output "
                              f"{ev.classifier}` or set eval.build_if_missing: true", file=file,
                              key="eval.classifier", value=ev.classifier)
    check_arguments(TrainConfig, recipe["train"], key="train", file=file)
    train = TrainConfig(**recipe["train"])
    _positive(train, ("max_steps", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints"),
              "train", file)

    data_kwargs = {k: v for k, v in data_cfg.items() if k != "type"}
    channels = data_cls.channels_from_config(**data_kwargs)
    model_cls.validate(recipe, channels, file=file)


def build(recipe: Recipe) -> Parts:
    """Validate, then construct every part. Weights are initialised here: seed first."""
    validate_recipe(recipe)
    file = recipe.source
    data_cfg, loader_cfg = _split_data(recipe)
    nets = {name: NETS.build(cfg, key=f"nets.{name}", file=file) for name, cfg in recipe["nets"].items()}
    losses = {name: LOSSES.build(cfg, key=f"losses.{name}", file=file) for name, cfg in recipe["losses"].items()}
    model = MODELS.build(recipe["model"], key="model", file=file, nets=nets, losses=losses)
    dataset = DATASETS.build(data_cfg, key="data", file=file)
    model.check_data(dataset, file=file)
    ema = EMAConfig(**recipe["ema"]) if recipe.get("ema") is not None else None
    return Parts(recipe=recipe, model=model, nets=nets, losses=losses, dataset=dataset,
                 train=TrainConfig(**recipe["train"]), loader=LoaderConfig(**loader_cfg), ema=ema)


def build_optimizers(recipe: Recipe, model: Any) -> dict:
    """One optimizer per group over that group's nets (call after the nets are on their device)."""
    out = {}
    for group, names in model.optim_groups.items():
        params = [p for n in names for p in model.nets[n].parameters()]
        out[group] = build_optimizer(recipe["optim"][group], params, key=f"optim.{group}", file=recipe.source)
    return out


def build_net(recipe: dict, name: str, *, file: str) -> nn.Module:
    """One net from a (stored) recipe, as translate and export need."""
    _import_builtins()
    load_plugins(recipe.get("plugins"), file=file)
    return NETS.build(recipe["nets"][name], key=f"nets.{name}", file=file)


def train_config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]
