"""Recipe -> parts. ``validate_recipe`` checks every section, type, argument and cross-field rule once, without
building or reading anything, and returns the classes it resolved; ``build`` constructs from those."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .arguments import ARGUMENT_ERRORS, check_arguments, dry_build
from .errors import DataError, RecipeError, recipe_file
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
from .recipe.schema import check_keep_best, check_trackers
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
    _check_workers(LoaderConfig(**loader_cfg).num_workers, file)
    data_cls = DATASETS.check(data_cfg, key="data", file=file, also_valid=LOADER_KEYS)
    model_cls = MODELS.check(split_model_config(recipe["model"])[0], key="model", file=file,
                             provided=("nets", "losses"), also_valid=("init_from",))
    _check_names(recipe, "nets", model_cls.nets_required, model_cls.nets_optional)
    _check_names(recipe, "losses", model_cls.losses_required, model_cls.losses_optional)
    _check_names(recipe, "optim", tuple(model_cls.groups_for(recipe["nets"] or {})))
    net_classes = {}
    contract = model_cls.export_contract() if hasattr(model_cls, "export_contract") else {}
    for name, cfg in recipe["nets"].items():
        net_cfg = net_config(cfg, key=f"nets.{name}", file=file)[0]
        net_classes[name] = NETS.check(net_cfg, key=f"nets.{name}", file=file)
        dry_build(net_classes[name], net_cfg, key=f"nets.{name}", file=file)
        if contract.get(name):
            _check_contract(recipe, name, contract[name], model_cls, file)
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


def cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


MIN_WORKER_LIMIT = 4  # data.num_workers up to this always passes: a recipe written for a larger machine still runs


def _check_workers(workers: Any, file: str | None) -> None:
    """data.num_workers: at most the CPU cores (or MIN_WORKER_LIMIT). Each is a forked process; more than the
    cores only compete for them, and 100000 of them never finish starting."""
    cores = cpu_count()
    limit = max(cores, MIN_WORKER_LIMIT)
    if isinstance(workers, int) and not isinstance(workers, bool) and workers > limit:
        why = f"the CPU cores here ({cores})" if limit == cores else f"{limit} (this machine has {cores} CPU cores)"
        raise RecipeError(f"more data loader worker processes than can run here: use at most {why}; 0 loads in the "
                          "training process, which suits cached or small data", file=file, key="data.num_workers",
                          value=workers)


def _check_contract(recipe: Recipe, name: str, attributes: dict[str, str], model_cls: type,
                    file: str | None) -> None:
    """An exported net has the attributes that the commands running an export alone (translate, tiling, sample,
    eval) read from it: built on the meta device (no memory, no weights) and looked at."""
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            net = build_net_config(recipe["nets"][name], key=f"nets.{name}", file=file)
    except (NotImplementedError, RecipeError, *ARGUMENT_ERRORS):  # dry_build has judged the arguments: no verdict
        return
    for attribute, why in attributes.items():
        value = getattr(net, attribute, None)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            found = "has none" if not hasattr(net, attribute) else f"has {value!r}"
            raise RecipeError(
                f"model '{recipe['model']['type']}' exports this net, and {type(net).__name__} must have a positive "
                f"integer attribute '{attribute}' ({why}); it {found}. Set self.{attribute} in its __init__ (README: "
                "\"Components and your own code\")", file=file, key=f"nets.{name}",
                value=recipe["nets"][name].get("type"))


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
        scorer = scorer_for(model_cls, recipe["eval"])
        if scorer is None:
            raise RecipeError(f"model '{recipe['model']['type']}' has no built-in evaluation; remove the eval section "
                              "or score FID/KID with eval: {fid: {real: DIR}}", file=file, key="eval")
        scorer.check_config(recipe["eval"], recipe, file=file)
    train, monitor = _check_train(recipe)
    check_trackers(train, file)
    check_keep_best(train, recipe, scorer, file)
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


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def check_data_paths(recipe: Recipe) -> None:
    """The data the recipe names exists. A demo data set that is not there yet passes at its own place only,
    data/demo/<demo>, where it is built on first use; a mistyped data.root is never filled with demo data."""
    from .data.demo import DEMO_PLACE, is_demo_place
    file = recipe.source
    data, ev = recipe["data"], recipe.get("eval") or {}
    demo = data.get("demo")
    for key, path in (("data.root", data.get("root")), ("eval.data", ev.get("data"))):
        if not isinstance(path, str) or _exists(path):
            continue
        where = "" if Path(path).is_absolute() else f" (relative to {Path.cwd()})"
        if isinstance(demo, str) and is_demo_place(path, demo) and (
                key == "data.root" or is_demo_place(str(data.get("root")), demo)):
            continue  # built on first use, before any eval reads it
        if key == "data.root" and isinstance(demo, str):
            place = "/".join((*DEMO_PLACE, demo))
            raise RecipeError(f"no such folder{where}. The demo data set '{demo}' is built on first use only at its "
                              f"own place, {place}, not at any data.root: point data.root at your data or at "
                              f"{place}; to build the demo elsewhere, run python -m i2i.data.demo {demo} {path}",
                              file=file, key=key, value=path)
        raise RecipeError(f"no such file or folder{where}; point {key} at your data", file=file, key=key, value=path)


def check_data_layout(recipe: Recipe) -> None:
    """The data set's files are there in its layout (listing, not decoding): ``check_layout`` of its class."""
    data_cfg, _ = split_data(recipe["data"])
    data_cls = DATASETS.get(data_cfg.get("type"), key="data.type", file=recipe.source)
    root = data_cfg.get("root")
    if not hasattr(data_cls, "check_layout") or (
            isinstance(root, str) and data_cfg.get("demo") is not None and not _exists(root)):
        return  # a plug-in data set without the check; a demo data set to be built at its own place
    try:
        data_cls.check_layout(**{k: v for k, v in data_cfg.items() if k != "type"})
    except DataError as exc:
        raise RecipeError(f"the data is not in the layout '{data_cfg.get('type')}' reads: {exc}", file=recipe.source,
                          key="data.root", value=root) from exc


def check_output_dir(recipe: Recipe) -> None:
    """The run folder (train.output_dir, else runs/<name>) is a folder, or can be made: no file is in the way."""
    output_dir = recipe["train"].get("output_dir")
    run_dir = Path(output_dir or Path("runs") / str(recipe["name"]))
    key = "train.output_dir"
    value = output_dir if output_dir else f"{run_dir} (the default, runs/<name>)"
    for folder in (run_dir, *run_dir.parents):
        try:
            exists = folder.exists()
        except (OSError, ValueError):
            raise RecipeError("not a usable folder name", file=recipe.source, key=key, value=value) from None
        if not exists:
            continue
        if not folder.is_dir():
            where = "is a file" if folder == run_dir else f"lies under {folder}, which is a file"
            raise RecipeError(f"the run folder {where}, not a folder; choose another train.output_dir",
                              file=recipe.source, key=key, value=value)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RecipeError(f"cannot write in {folder} (permission denied); choose another train.output_dir",
                              file=recipe.source, key=key, value=value)
        return


def check_run_paths(recipe: Recipe) -> None:
    """What a run needs on disk, checked cheaply by ``i2i check`` and by ``train`` before it writes anything: the
    run folder can be made, the data exists (a demo's only at its own place), and it is in the data set's layout."""
    check_output_dir(recipe)
    check_data_paths(recipe)
    check_data_layout(recipe)


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
