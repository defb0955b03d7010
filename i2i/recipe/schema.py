"""The recipe's own sections, as dataclasses: every key of ``train:``, ``ema:``, ``monitor:`` and the loader keys
of ``data:``, with its default. Component sections (``nets:``, ``losses:``, ``data:``'s data set, ``optim:``) take
the arguments of the registered class they name instead."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import RecipeError

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
    tensorboard: bool = True        # log to TensorBoard when it is installed (unless train.trackers says otherwise)
    trackers: list[str] | dict[str, dict | None] | None = None  # Accelerate trackers (TRACKERS), or name: options
    keep_best: dict | None = None   # {metric: eval/<name>, mode: min|max}: checkpoints/best and export_best/
    report: bool = True             # refresh report.html and curves.png at each sample interval and at the end
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


#: Accelerate's experiment trackers (``accelerate.utils.LoggerType``) -> the pip package each needs
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml", "aim": "aim",
            "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab", "trackio": "trackio"}
BEST_MODES = ("min", "max")


def check_trackers(train: TrainConfig, file: str | None) -> dict[str, dict]:
    """``train.trackers`` (a list of names, or a mapping name -> that tracker's init options) -> {name: options};
    the default is TensorBoard, unless ``train.tensorboard: false``."""
    given = train.trackers
    if given is None:
        return {"tensorboard": {}} if train.tensorboard else {}
    items = dict.fromkeys(given, None).items() if isinstance(given, list) else given.items()
    out = {}
    for name, options in items:
        if name not in TRACKERS:
            raise RecipeError("not a tracker Accelerate knows", file=file, key="train.trackers", value=name,
                              choices=list(TRACKERS))
        if options is not None and not isinstance(options, dict):
            raise RecipeError("a tracker's options must be a mapping (passed to it as init_kwargs)", file=file,
                              key=f"train.trackers.{name}", value=options)
        out[name] = dict(options or {})
    if "tensorboard" in out and train.tensorboard is False:
        raise RecipeError("train.tensorboard is false but train.trackers lists tensorboard; drop one of the two",
                          file=file, key="train.tensorboard", value=False)
    return out


def check_keep_best(train: TrainConfig, recipe: dict, scorer: type | None, file: str | None) -> None:
    """``train.keep_best: {metric: eval/<name>, mode: min|max}``: an eval figure the model's scorer logs."""
    best = train.keep_best
    if best is None:
        return
    example = "{metric: eval/<name>, mode: min}"
    if not isinstance(best, dict):
        raise RecipeError(f"must be a mapping such as {example}", file=file, key="train.keep_best", value=best)
    unknown = sorted(set(best) - {"metric", "mode"})
    if unknown:
        raise RecipeError(f"unknown key (a mapping such as {example})", file=file, key=f"train.keep_best.{unknown[0]}",
                          value=unknown[0], choices=["metric", "mode"])
    metric, mode = best.get("metric"), best.get("mode")
    if mode not in BEST_MODES:
        raise RecipeError("min keeps the lowest value, max the highest", file=file, key="train.keep_best.mode",
                          value=mode, choices=list(BEST_MODES))
    if not isinstance(metric, str) or not metric.startswith("eval/") or metric == "eval/":
        raise RecipeError("must name an eval figure, eval/<name> (the figures the recipe's eval section logs)",
                          file=file, key="train.keep_best.metric", value=metric)
    if scorer is None or recipe.get("eval") is None:
        raise RecipeError(f"{metric} is never logged: the recipe has no eval section. Add one (the model's scorer "
                          "logs eval/* figures every eval.every steps) or remove train.keep_best", file=file,
                          key="train.keep_best.metric", value=metric)
    names = scorer.metric_names(recipe["eval"], recipe) if hasattr(scorer, "metric_names") else None
    if names is not None and metric.removeprefix("eval/") not in names:
        raise RecipeError(f"{scorer.__name__} does not log this figure with this eval section", file=file,
                          key="train.keep_best.metric", value=metric, choices=[f"eval/{n}" for n in names])


def split_data(data: dict) -> tuple[dict, dict]:
    """``data:`` -> (the data set's arguments with ``type``, the loader keys)."""
    return ({k: v for k, v in data.items() if k not in LOADER_KEYS},
            {k: v for k, v in data.items() if k in LOADER_KEYS})


def check_positive(cfg: Any, names: tuple[str, ...], section: str, file: str | None) -> None:
    """Each named number of a section's dataclass is > 0 (None: not set, allowed)."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, (int, float)) and value <= 0:
            raise RecipeError("must be positive", file=file, key=f"{section}.{name}", value=value)
