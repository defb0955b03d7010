"""Recipe -> parts: validate the whole recipe first, then build nets, losses, model, data and optimizers."""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .errors import RecipeError, recipe_file
from .init_from import apply_init_from, check_init_from, split_model_config
from .layers import apply_spectral_norm
from .optim import OPTIMIZERS, SCHEDULES, build_optimizer
from .recipe import Recipe
from .registry import (
    DATASETS,
    LOSSES,
    MODELS,
    NETS,
    check_arguments,
    config_value,
    dry_build,
    load_plugins,
)

LOADER_KEYS = ("batch_size", "num_workers", "pin_memory", "persistent_workers", "prefetch_factor")
MAX_BATCH_BYTES = 2 << 30  # float32 images of one batch; the nets' activations need many times more


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
    n_critic: int = 1               # D steps per G step (WGAN: 5)
    g_steps: int = 1                # G steps per D step
    d_warmup_steps: int = 0         # steps at the start that train only D
    channels_last: bool = False     # NHWC memory format for nets and batches (measure: helps on GPUs, hurts on CPUs)
    compile: bool = False           # torch.compile each net's forward in place (state_dict names unchanged)
    keep_freed_memory: bool = True  # CPU on glibc: freed blocks stay in the process (i2i/allocator.py); per process


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
class MonitorConfig:
    """The recipe's ``monitor:`` section (on by default)."""

    enabled: bool = True
    every: int | None = None          # steps between diversity checks (default: train.log_every)
    samples: int = 16                 # generated and real images in the fixed diversity batch
    warmup_steps: int = 200           # no D-wins or collapse verdicts before this step
    d_win_accuracy: float = 0.95      # D separates real from fake at least this well ...
    d_win_checks: int = 3             # ... for this many consecutive log intervals while G's adversarial loss climbs
    collapse_ratio: float = 0.2       # generated diversity below this fraction of the real data's ...
    collapse_checks: int = 2          # ... in this many consecutive checks
    data_batches: int = 3             # first batches whose value range is checked
    on_nan: Literal["stop", "skip"] = "stop"  # stop: end the run, keep the last good checkpoint; skip: drop the update
    inject_nan_step: int | None = None        # fault injection to see the NaN handling work (testing only)


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
    with recipe_file(recipe.source):  # checks deep in a component name the key; this names the file
        _validate_recipe(recipe)


def _validate_recipe(recipe: Recipe) -> None:
    _import_builtins()
    file = recipe.source
    load_plugins(recipe.get("plugins"), file=file)

    data_cfg, loader_cfg = _split_data(recipe)
    check_arguments(LoaderConfig, loader_cfg, key="data", file=file)
    _positive(LoaderConfig(**loader_cfg), ("batch_size", "prefetch_factor"), "data", file)
    data_cls = DATASETS.check(data_cfg, key="data", file=file, also_valid=LOADER_KEYS)
    model_cls = MODELS.check(split_model_config(recipe["model"])[0], key="model", file=file,
                             provided=("nets", "losses"), also_valid=("init_from",))

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

    check_names("nets", model_cls.nets_required, model_cls.nets_optional)
    check_names("losses", model_cls.losses_required, model_cls.losses_optional)
    check_names("optim", tuple(model_cls.groups_for(recipe["nets"] or {})))
    for name, cfg in recipe["nets"].items():
        net_cfg = _net_config(cfg, key=f"nets.{name}", file=file)[0]
        dry_build(NETS.check(net_cfg, key=f"nets.{name}", file=file), net_cfg, key=f"nets.{name}", file=file)
    check_init_from(recipe, file=file,  # model.init_from: the export exists, has the net, and its shapes fit
                    make_net=lambda n: _build_net(recipe["nets"][n], key=f"nets.{n}", file=file))
    for name, cfg in recipe["losses"].items():
        LOSSES.check(cfg, key=f"losses.{name}", file=file)
    for name, cfg in recipe["optim"].items():
        optimizer_cls = OPTIMIZERS.check(cfg, key=f"optim.{name}", file=file, provided=("params",))
        if isinstance(cfg.get("lr"), (int, float)) and cfg["lr"] <= 0:
            raise RecipeError("learning rate must be positive", file=file, key=f"optim.{name}.lr", value=cfg["lr"])
        dry_build(optimizer_cls, cfg, key=f"optim.{name}", file=file, meta=False, params=[nn.Parameter(torch.zeros(1))])
    if recipe.get("schedule") is not None:
        dry_build(SCHEDULES.check(recipe["schedule"], key="schedule", file=file), recipe["schedule"],
                  key="schedule", file=file, meta=False)
    if recipe.get("ema") is not None:
        if not isinstance(recipe["ema"], dict):
            raise RecipeError("ema must be a mapping such as {decay: 0.999} or null", file=file, key="ema",
                              value=recipe["ema"])
        check_arguments(EMAConfig, recipe["ema"], key="ema", file=file)
        decay = EMAConfig(**recipe["ema"]).decay
        if not 0 < decay < 1:
            raise RecipeError("decay must be between 0 and 1", file=file, key="ema.decay", value=decay)
    if recipe.get("eval") is not None:
        from .evaluation.scoring import scorer_for
        scorer = scorer_for(model_cls)
        if scorer is None:
            raise RecipeError(f"model '{recipe['model']['type']}' has no built-in evaluation; remove the eval section",
                              file=file, key="eval")
        scorer.check_config(recipe["eval"], recipe, file=file)
    check_arguments(TrainConfig, recipe["train"], key="train", file=file)
    train = TrainConfig(**recipe["train"])
    _positive(train, ("max_steps", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "n_critic",
                      "g_steps"), "train", file)
    if train.d_warmup_steps < 0:
        raise RecipeError("must be >= 0", file=file, key="train.d_warmup_steps", value=train.d_warmup_steps)
    if recipe.get("monitor") is not None:
        if not isinstance(recipe["monitor"], dict):
            raise RecipeError("monitor must be a mapping such as {enabled: true} or null", file=file, key="monitor",
                              value=recipe["monitor"])
        check_arguments(MonitorConfig, recipe["monitor"], key="monitor", file=file)
        _positive(MonitorConfig(**recipe["monitor"]), ("every", "samples", "d_win_checks", "collapse_checks"),
                  "monitor", file)

    data_kwargs = {k: v for k, v in data_cfg.items() if k != "type"}
    channels = data_cls.channels_from_config(**data_kwargs)
    _check_batch_memory(data_cls, data_cfg, loader_cfg, channels, file)
    model_cls.validate(recipe, channels, file=file)


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


def build(recipe: Recipe) -> Parts:
    """Validate, then construct every part. Weights are initialised here: seed first."""
    validate_recipe(recipe)
    file = recipe.source
    data_cfg, loader_cfg = _split_data(recipe)
    nets = {name: _build_net(cfg, key=f"nets.{name}", file=file) for name, cfg in recipe["nets"].items()}
    losses = {name: LOSSES.build(cfg, key=f"losses.{name}", file=file) for name, cfg in recipe["losses"].items()}
    apply_init_from(recipe, nets, file=file)  # before the model, optimizers and EMA see the nets
    model = MODELS.build(split_model_config(recipe["model"])[0], key="model", file=file, nets=nets, losses=losses)
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
    return _build_net(recipe["nets"][name], key=f"nets.{name}", file=file)


def _net_config(cfg: Any, *, key: str, file: str) -> tuple[Any, bool]:
    """``spectral_norm: true`` works on every net: passed on where the net takes it, else applied after building."""
    if not isinstance(cfg, dict) or "spectral_norm" not in cfg or "type" not in cfg:  # NETS.check says what is wrong
        return cfg, False
    cls = NETS.get(cfg.get("type"), key=f"{key}.type", file=file)
    if "spectral_norm" in inspect.signature(cls.__init__).parameters:
        return cfg, False
    if not isinstance(cfg["spectral_norm"], bool):
        raise RecipeError("must be true or false", file=file, key=f"{key}.spectral_norm", value=cfg["spectral_norm"],
                          choices=[True, False])
    return {k: v for k, v in cfg.items() if k != "spectral_norm"}, cfg["spectral_norm"]


def _build_net(cfg: dict, *, key: str, file: str) -> nn.Module:
    cfg, sn = _net_config(cfg, key=key, file=file)
    net = NETS.build(cfg, key=key, file=file)
    return apply_spectral_norm(net) if sn else net


def train_config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]
