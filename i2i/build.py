"""Recipe -> parts. ``validate_recipe`` checks every section, type, argument and cross-field rule once, without
building or reading anything, and returns the classes it resolved; ``build`` constructs from those."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .arguments import check_arguments, dry_build
from .errors import RecipeError, recipe_file
from .evaluation.scoring import scorer_for
from .init_from import apply_init_from, check_init_from, split_model_config
from .nets.factory import build_net_config, net_config
from .optim import OPTIMIZERS, SCHEDULES, build_optimizer
from .recipe import (
    LOADER_KEYS,
    MAX_BATCH_BYTES,
    EMAConfig,
    LoaderConfig,
    MonitorConfig,
    Recipe,
    TrainConfig,
    check_positive,
    split_data,
)
from .registry import DATASETS, LOSSES, MODELS, NETS, config_value, load_plugins


@dataclass
class Resolved:
    """What validation found: the class behind every ``type:`` and the recipe's own sections as dataclasses."""

    model: type
    dataset: type
    nets: dict[str, type]
    losses: dict[str, type]
    train: TrainConfig
    loader: LoaderConfig
    ema: EMAConfig | None
    monitor: MonitorConfig
    scorer: type | None


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
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    scorer: type | None = None


def import_builtins() -> None:
    """Register the built-in components (registration happens on import)."""
    from . import data, losses, models, nets  # noqa: F401


def validate_recipe(recipe: Recipe) -> Resolved:
    """Check every section, type, argument name and cross-field rule; nothing is built or read."""
    with recipe_file(recipe.source):  # checks deep in a component name the key; this names the file
        return _validate_recipe(recipe)


def _check_names(recipe: Recipe, section: str, required: tuple, optional: tuple = ()) -> None:
    got, file = recipe[section] or {}, recipe.source
    for name in required:
        if name not in got:
            raise RecipeError(f"model '{recipe['model']['type']}' needs {section}.{name}", file=file,
                              key=f"{section}.{name}", choices=required)
    what = {"nets": "net", "losses": "loss", "optim": "optimizer group"}[section]
    for name in got:
        if name not in required + optional:
            raise RecipeError(f"model '{recipe['model']['type']}' has no {what} of this name", file=file,
                              key=f"{section}.{name}", value=name, choices=required + optional)


def _check_components(recipe: Recipe) -> tuple[type, type, dict[str, type], dict[str, type]]:
    """data, model, nets, losses, optim, schedule: the registered class behind each, checked against its
    constructor (nets and optimizers also built on trial, nets on the meta device)."""
    file = recipe.source
    data_cfg, loader_cfg = split_data(recipe["data"])
    check_arguments(LoaderConfig, loader_cfg, key="data", file=file)
    check_positive(LoaderConfig(**loader_cfg), ("batch_size", "prefetch_factor"), "data", file)
    data_cls = DATASETS.check(data_cfg, key="data", file=file, also_valid=LOADER_KEYS)
    model_cls = MODELS.check(split_model_config(recipe["model"])[0], key="model", file=file,
                             provided=("nets", "losses"), also_valid=("init_from",))
    _check_names(recipe, "nets", model_cls.nets_required, model_cls.nets_optional)
    _check_names(recipe, "losses", model_cls.losses_required, model_cls.losses_optional)
    _check_names(recipe, "optim", tuple(model_cls.groups_for(recipe["nets"] or {})))
    net_classes = {}
    for name, cfg in recipe["nets"].items():
        net_cfg = net_config(cfg, key=f"nets.{name}", file=file)[0]
        net_classes[name] = NETS.check(net_cfg, key=f"nets.{name}", file=file)
        dry_build(net_classes[name], net_cfg, key=f"nets.{name}", file=file)
    check_init_from(recipe, file=file,  # model.init_from: the export exists, has the net, and its shapes fit
                    make_net=lambda n: build_net_config(recipe["nets"][n], key=f"nets.{n}", file=file))
    loss_classes = {name: LOSSES.check(cfg, key=f"losses.{name}", file=file) for name, cfg in recipe["losses"].items()}
    for name, cfg in recipe["optim"].items():
        optimizer_cls = OPTIMIZERS.check(cfg, key=f"optim.{name}", file=file, provided=("params",))
        if isinstance(cfg.get("lr"), (int, float)) and cfg["lr"] <= 0:
            raise RecipeError("learning rate must be positive", file=file, key=f"optim.{name}.lr", value=cfg["lr"])
        dry_build(optimizer_cls, cfg, key=f"optim.{name}", file=file, meta=False, params=[nn.Parameter(torch.zeros(1))])
    if recipe.get("schedule") is not None:
        dry_build(SCHEDULES.check(recipe["schedule"], key="schedule", file=file), recipe["schedule"],
                  key="schedule", file=file, meta=False)
    return model_cls, data_cls, net_classes, loss_classes


def _section(recipe: Recipe, name: str, schema: type, example: str) -> Any:
    """An optional mapping section (``ema:``, ``monitor:``) as its dataclass; None when absent or null."""
    value = recipe.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecipeError(f"{name} must be a mapping such as {example} or null", file=recipe.source, key=name,
                          value=value)
    check_arguments(schema, value, key=name, file=recipe.source)
    return schema(**value)


def _check_train(recipe: Recipe) -> tuple[TrainConfig, MonitorConfig]:
    """train and monitor: the recipe's own sections."""
    file = recipe.source
    check_arguments(TrainConfig, recipe["train"], key="train", file=file)
    train = TrainConfig(**recipe["train"])
    check_positive(train, ("max_steps", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                           "n_critic", "g_steps"), "train", file)
    if train.d_warmup_steps < 0:
        raise RecipeError("must be >= 0", file=file, key="train.d_warmup_steps", value=train.d_warmup_steps)
    monitor = _section(recipe, "monitor", MonitorConfig, "{enabled: true}")
    if monitor is not None:
        check_positive(monitor, ("every", "samples", "d_win_checks", "collapse_checks"), "monitor", file)
    return train, monitor or MonitorConfig()


def _validate_recipe(recipe: Recipe) -> Resolved:
    import_builtins()
    file = recipe.source
    load_plugins(recipe.get("plugins"), file=file)
    model_cls, data_cls, net_classes, loss_classes = _check_components(recipe)
    ema = _section(recipe, "ema", EMAConfig, "{decay: 0.999}")
    if ema is not None and not 0 < ema.decay < 1:
        raise RecipeError("decay must be between 0 and 1", file=file, key="ema.decay", value=ema.decay)
    scorer = None
    if recipe.get("eval") is not None:
        scorer = scorer_for(model_cls)
        if scorer is None:
            raise RecipeError(f"model '{recipe['model']['type']}' has no built-in evaluation; remove the eval section",
                              file=file, key="eval")
        scorer.check_config(recipe["eval"], recipe, file=file)
    train, monitor = _check_train(recipe)
    data_cfg, loader_cfg = split_data(recipe["data"])
    channels = data_cls.channels_from_config(**{k: v for k, v in data_cfg.items() if k != "type"})
    _check_batch_memory(data_cls, data_cfg, loader_cfg, channels, file)
    model_cls.validate(recipe, channels, file=file)
    return Resolved(model=model_cls, dataset=data_cls, nets=net_classes, losses=loss_classes, train=train,
                    loader=LoaderConfig(**loader_cfg), ema=ema, monitor=monitor, scorer=scorer)


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _check_batch_memory(data_cls: Any, data_cfg: dict, loader_cfg: dict, channels: dict, file: str) -> None:
    """Refuse sizes whose float32 images alone cannot fit in memory (the activations need many times more)."""
    per_pixel = 4 * sum(channels.values())
    load_size, size = config_value(data_cls, data_cfg, "load_size"), config_value(data_cls, data_cfg, "size")
    batch = loader_cfg.get("batch_size", 1)
    if isinstance(load_size, int) and load_size**2 * per_pixel > MAX_BATCH_BYTES:
        raise RecipeError(f"one {load_size} x {load_size} image takes {_gib(load_size**2 * per_pixel)} as float32 "
                          f"(limit {_gib(MAX_BATCH_BYTES)})", file=file, key="data.load_size", value=load_size)
    if isinstance(size, int) and isinstance(batch, int) and batch * size**2 * per_pixel > MAX_BATCH_BYTES:
        raise RecipeError(f"one batch ({batch} x {sum(channels.values())} channels x {size} x {size} px) takes "
                          f"{_gib(batch * size**2 * per_pixel)} as float32 (limit {_gib(MAX_BATCH_BYTES)}), and the "
                          "nets' activations need many times more", file=file,
                          key="data.size" if size**2 * per_pixel * 8 > MAX_BATCH_BYTES else "data.batch_size",
                          value=size if size**2 * per_pixel * 8 > MAX_BATCH_BYTES else batch)


def check_data_paths(recipe: Recipe) -> None:
    """For ``i2i check``: the data the recipe names exists (a demo data set is built on first use)."""
    file = recipe.source
    data, ev = recipe["data"], recipe.get("eval") or {}
    for key, path, skip in (("data.root", data.get("root"), data.get("demo") is not None),
                            ("eval.data", ev.get("data"), False)):
        if isinstance(path, str) and not skip:
            try:
                found = Path(path).exists()
            except (OSError, ValueError):  # a name too long, a NUL byte
                found = False
            if not found:
                where = "" if Path(path).is_absolute() else f" (relative to {Path.cwd()})"
                raise RecipeError(f"no such file or folder{where}; point {key} at your data", file=file, key=key,
                                  value=path)


def build(recipe: Recipe, resolved: Resolved | None = None) -> Parts:
    """Construct every part (validating first unless ``resolved``, from ``validate_recipe``, is given). Weights
    are initialised here: seed first."""
    resolved = resolved or validate_recipe(recipe)
    file = recipe.source
    data_cfg, _ = split_data(recipe["data"])
    nets = {name: build_net_config(cfg, key=f"nets.{name}", file=file) for name, cfg in recipe["nets"].items()}
    losses = {name: resolved.losses[name](**{k: v for k, v in cfg.items() if k != "type"})
              for name, cfg in recipe["losses"].items()}
    apply_init_from(recipe, nets, file=file)  # before the model, optimizers and EMA see the nets
    model_cfg = split_model_config(recipe["model"])[0]
    model = resolved.model(**{k: v for k, v in model_cfg.items() if k != "type"}, nets=nets, losses=losses)
    dataset = resolved.dataset(**{k: v for k, v in data_cfg.items() if k != "type"})
    model.check_data(dataset, file=file)
    return Parts(recipe=recipe, model=model, nets=nets, losses=losses, dataset=dataset, train=resolved.train,
                 loader=resolved.loader, ema=resolved.ema, monitor=resolved.monitor, scorer=resolved.scorer)


def build_optimizers(recipe: Recipe, model: Any) -> dict:
    """One optimizer per group over that group's nets (call after the nets are on their device)."""
    out = {}
    for group, names in model.optim_groups.items():
        params = [p for n in names for p in model.nets[n].parameters()]
        out[group] = build_optimizer(recipe["optim"][group], params, key=f"optim.{group}", file=recipe.source)
    return out
