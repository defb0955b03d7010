"""Checkpoint files of a run, in one place: where they are (``latest``), writing one atomically with rotation,
reading one back for a resume, and turning one into an export (``i2i export``).

A checkpoint folder ``<run>/checkpoints/step_N`` holds Accelerate's ``save_state`` files (nets as
``model[_i].safetensors`` in prepare order, optimizers, RNG), ``i2i_state.pt`` (schedulers, EMAs, image pools:
plain tensors, loaded with ``weights_only``), ``recipe.yaml`` and ``trainer_state.json``. It is written as
``.tmp_step_N`` and renamed when complete; the ``latest`` pointer file is replaced atomically after that.

A resumed run's recipe is compared with the checkpoint's ``recipe.yaml`` (``resume_changes``): ``RESUMABLE_KEYS``
lists what may differ; anything else is refused before a file is written.
"""
from __future__ import annotations

import fnmatch
import inspect
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..errors import I2IError, RecipeError, short_repr
from ..inference.export import write_export
from ..optim import OPTIMIZERS, SCHEDULES
from ..recipe import LOADER_KEYS, EMAConfig, LoaderConfig, MonitorConfig, Recipe, TrainConfig, recipe_from_text
from ..registry import DATASETS, LOSSES, MODELS, NETS

CHECKPOINTS = "checkpoints"
EXTRA_STATE = "i2i_state.pt"
TRAINER_STATE = "trainer_state.json"
LATEST = "latest"
BEST = "best"  # checkpoints/best: train.keep_best's best so far, never pruned (rotation keeps step_* only)


def step_folder(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:08d}"


def temporary_folder(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f".tmp_step_{step:08d}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run: the ``latest`` pointer, else the last complete ``step_*``."""
    folder = Path(run_dir) / CHECKPOINTS
    pointer = folder / LATEST
    if pointer.is_file():
        target = folder / pointer.read_text().strip()
        if (target / TRAINER_STATE).is_file():
            return target
    done = sorted(p for p in folder.glob("step_*") if (p / TRAINER_STATE).is_file())
    return done[-1] if done else None


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """``--resume latest|auto|PATH`` -> the checkpoint folder to load (None: start afresh)."""
    if resume is None:
        return None
    if resume in ("latest", "auto"):
        found = latest_checkpoint(run_dir)
        if found is None and resume == "latest":
            raise I2IError(f"--resume latest: no checkpoint in {Path(run_dir) / CHECKPOINTS}")
        return found
    path = Path(resume)
    if (path / CHECKPOINTS).is_dir():
        path = latest_checkpoint(path) or path
    if not (path / TRAINER_STATE).is_file():
        raise I2IError(f"--resume {resume}: not a checkpoint folder (no {TRAINER_STATE})")
    return path


def read_trainer_state(folder: Path) -> dict:
    return json.loads((Path(folder) / TRAINER_STATE).read_text())


def best_folder(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / BEST


def read_best(run_dir: Path) -> dict | None:
    """The record of ``checkpoints/best`` ({metric, mode, value, step}), or None when there is none. A crash
    between the two renames of ``save_best`` leaves the previous best as ``.old_best``: that one counts then."""
    for folder in (best_folder(run_dir), Path(run_dir) / CHECKPOINTS / f".old_{BEST}"):
        try:
            record = read_trainer_state(folder).get("best")
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and {"metric", "mode", "value", "step"} <= set(record):
            return record
    return None


# ---------------------------------------------------------------- a resumed run's recipe
#: The recipe keys a resumed run may change (``--resume latest train.max_steps=20000 optim.g.lr=1.0e-4``), as
#: fnmatch patterns. Each takes effect for real: the trainer reads these from the recipe as it runs, and the
#: learning rates, which the checkpoint's optimizer and scheduler state would otherwise restore, are set after the
#: state is loaded (``set_learning_rate``). Every other difference from the checkpoint's recipe is refused, since
#: the checkpoint's weights, optimizer state (betas, weight decay, fused...), schedule (its steps are saved with
#: the scheduler), image pools and data order were made by it: nets, model, losses, data set and batch size,
#: seed, schedule, EMA, mixed precision, n_critic and the other update rules.
RESUMABLE_KEYS = (
    "name",
    "train.max_steps", "train.log_every", "train.sample_every", "train.sample_count", "train.checkpoint_every",
    "train.keep_checkpoints", "train.output_dir", "train.tensorboard", "train.grad_clip",
    "train.trackers", "train.trackers.*", "train.report",
    "train.keep_best", "train.keep_best.*",  # a changed metric or mode starts a new best (checkpoints/best)
    "train.cpu_threads", "train.keep_freed_memory", "train.channels_last", "train.compile",
    "train.allow_slow_precision",
    "data.num_workers", "data.pin_memory", "data.persistent_workers", "data.prefetch_factor", "data.cache",
    "data.demo",  # builds the data set when it is missing; the run reads the same files either way
    "optim.*.lr",
    "monitor", "monitor.*", "eval", "eval.*", "translate", "translate.*",
    "model.init_from", "model.init_from.*",  # a resume loads the checkpoint's weights over the initial ones
)
_SECTIONS = {"train": TrainConfig, "monitor": MonitorConfig, "ema": EMAConfig}
_ABSENT = "(absent)"


def _defaults(target: Any) -> dict[str, Any]:
    """Keyword defaults of a class's constructor (or a function); {} where the signature cannot be read."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    return {n: list(p.default) if isinstance(p.default, tuple) else p.default  # YAML has lists, not tuples
            for n, p in params.items() if p.default is not inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _component(registry: Any, cfg: Any) -> Any:
    """A component's recipe entry with its constructor's defaults filled in (as written when the type is unknown)."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("type"), str):
        return cfg
    try:
        cls = registry.get(cfg["type"])
    except (I2IError, ImportError):
        return cfg
    return {**_defaults(cls), **cfg}


def _filled(recipe: dict) -> dict:
    """The recipe with defaults filled in, so that writing a default out (or leaving it out) is no change."""
    out = dict(recipe)
    for name, schema in _SECTIONS.items():
        if isinstance(out.get(name), dict):
            out[name] = {**_defaults(schema), **out[name]}
    if isinstance(out.get("data"), dict):
        data = out["data"]
        loader = {**_defaults(LoaderConfig), **{k: v for k, v in data.items() if k in LOADER_KEYS}}
        out["data"] = {**_component(DATASETS, {k: v for k, v in data.items() if k not in LOADER_KEYS}), **loader}
    for section, registry in (("nets", NETS), ("losses", LOSSES), ("optim", OPTIMIZERS)):
        if isinstance(out.get(section), dict):
            out[section] = {k: _component(registry, v) for k, v in out[section].items()}
    if isinstance(out.get("schedule"), dict):
        out["schedule"] = _component(SCHEDULES, out["schedule"])
    if isinstance(out.get("model"), dict):
        out["model"] = _component(MODELS, out["model"])
    return out


def _leaves(node: Any, key: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_leaves(v, f"{key}.{k}" if key else str(k)))
        return out
    return {key: node}


def recipe_changes(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """Every dotted key whose value differs between two recipes (defaults filled in) -> (old, new)."""
    a, b = _leaves(_filled(old)), _leaves(_filled(new))
    return {k: (a.get(k, _ABSENT), b.get(k, _ABSENT)) for k in sorted(set(a) | set(b))
            if a.get(k, _ABSENT) != b.get(k, _ABSENT)}


def resumable(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE_KEYS)


def _change(key: str, old: Any, new: Any) -> str:
    return f"{key}: {short_repr(old, 40)} -> {short_repr(new, 40)}"


def resume_changes(folder: Path, recipe: Recipe) -> dict[str, tuple[Any, Any]]:
    """The keys in which ``recipe`` differs from the checkpoint's own (all of them in ``RESUMABLE_KEYS``);
    any other difference raises RecipeError (exit 2) naming the keys, before anything is written."""
    saved = Path(folder) / "recipe.yaml"
    if not saved.is_file():  # not written by i2i's save_checkpoint: nothing to compare with
        return {}
    old = recipe_from_text(saved.read_text(encoding="utf-8"), str(saved))
    changes = recipe_changes(old, recipe)
    refused = [k for k in changes if not resumable(k)]
    if refused:
        shown = "; ".join(_change(k, *changes[k]) for k in refused[:8]) + (" ..." if len(refused) > 8 else "")
        raise RecipeError(
            f"--resume {folder}: these keys differ from the recipe the checkpoint was trained with ({saved}) and "
            f"cannot change on resume: {shown}. The checkpoint's weights, optimizer state, schedule and data order "
            "were made with the old values: resume with them, or start a new run (another train.output_dir; "
            "model.init_from starts it from this run's export). Keys that can change on resume: "
            + ", ".join(p for p in RESUMABLE_KEYS if p.removesuffix(".*") == p or p[:-2] not in RESUMABLE_KEYS),
            file=recipe.source, key=refused[0] if len(refused) == 1 else None)
    return changes


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    return "; ".join(_change(k, *v) for k, v in changes.items())


def set_learning_rate(optimizer: Any, scheduler: Any, lr: float) -> None:
    """Make ``lr`` the base learning rate of an optimizer whose state (and its LambdaLR's) a checkpoint restored:
    the scheduler's factor for the current step still applies."""
    scheduler.base_lrs = [lr] * len(optimizer.param_groups)
    factors = [rule(scheduler.last_epoch) for rule in scheduler.lr_lambdas]
    for group, factor in zip(optimizer.param_groups, factors):
        group["initial_lr"] = lr
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(lr * factor)
        else:
            group["lr"] = lr * factor
    scheduler._last_lr = [g["lr"].item() if torch.is_tensor(g["lr"]) else g["lr"] for g in optimizer.param_groups]


def save_checkpoint(accelerator: Any, run_dir: Path, step: int, *, recipe: Recipe, extra_state: dict,
                    trainer_state: dict, keep: int) -> Path:
    """Write the checkpoint of ``step`` on every process, atomically (``_write_atomically``), then move
    ``latest`` to it and remove all but the newest ``keep``; ``latest`` names the last complete one throughout."""
    folder = Path(run_dir) / CHECKPOINTS
    final = step_folder(run_dir, step)

    def publish(tmp: Path) -> None:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        pointer_tmp = folder / ".latest.tmp"
        pointer_tmp.write_text(final.name)
        os.replace(pointer_tmp, folder / LATEST)
        for old in sorted(p for p in folder.glob("step_*") if p.is_dir())[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    _write_atomically(accelerator, temporary_folder(run_dir, step), publish, step, recipe, extra_state,
                      trainer_state)
    return final


def save_best(accelerator: Any, run_dir: Path, step: int, *, recipe: Recipe, extra_state: dict,
              trainer_state: dict) -> Path:
    """Write ``checkpoints/best`` on every process (a full checkpoint: resumable, exportable), replacing the
    previous best only once the new one is complete; ``latest`` and the step_* rotation are left alone."""
    folder = Path(run_dir) / CHECKPOINTS
    final, old = folder / BEST, folder / f".old_{BEST}"

    def publish(tmp: Path) -> None:
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    _write_atomically(accelerator, folder / f".tmp_{BEST}", publish, step, recipe, extra_state, trainer_state)
    return final


def _write_atomically(accelerator: Any, tmp: Path, publish: Callable[[Path], None], step: int, recipe: Recipe,
                      extra_state: dict, trainer_state: dict) -> None:
    """Every process: ``save_state`` into the temporary folder ``tmp``; the main process adds its files
    (``_complete``) and ``publish(tmp)`` moves the folder into place. Any failure (disk full, whatever the library
    reports it as: OSError, safetensors' SafetensorError, torch.save's RuntimeError; Ctrl-C) removes ``tmp`` and
    re-raises, so nothing half-written is ever published."""
    try:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.parent.mkdir(parents=True, exist_ok=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            _complete(tmp, step, recipe, extra_state, trainer_state)
            publish(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()


def _complete(tmp: Path, step: int, recipe: Recipe, extra_state: dict, trainer_state: dict) -> None:
    """What the main process adds to Accelerate's files: schedulers/EMAs/pools, the recipe, the trainer state."""
    torch.save({k: v.state_dict() for k, v in extra_state.items()}, tmp / EXTRA_STATE)
    (tmp / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    (tmp / TRAINER_STATE).write_text(json.dumps({"step": step, **trainer_state}), encoding="utf-8")


def _saved_extra_state(folder: Path, names: list[str]) -> dict:
    """``i2i_state.pt``, or for checkpoints written before it, Accelerate's ``custom_checkpoint_<i>.pkl`` in
    registration order (``names``); loaded with ``weights_only=True``: a checkpoint cannot run code."""
    path = folder / EXTRA_STATE
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    return {k: torch.load(folder / f"custom_checkpoint_{i}.pkl", map_location="cpu", weights_only=True)
            for i, k in enumerate(names) if (folder / f"custom_checkpoint_{i}.pkl").is_file()}


def load_extra_state(folder: Path, objects: dict, device: torch.device) -> None:
    """Restore schedulers, EMAs and pools from a checkpoint."""
    states = _saved_extra_state(Path(folder), list(objects))
    missing = sorted(set(objects) - set(states))
    if missing:
        raise I2IError(f"{folder}: the checkpoint has no saved state for {', '.join(missing)}; it was written by a "
                       "different recipe (ema, model or schedule changed?)")
    for k, obj in objects.items():
        obj.load_state_dict(states[k])
        if hasattr(obj, "to"):
            obj.to(device)


def export_meta(recipe: Recipe, directions: dict, step: int, ema: bool) -> dict:
    """What every export's meta.json says about the run it came from."""
    listed = {d: t if isinstance(t, str) else list(t) for d, t in directions.items()}  # a chain: a JSON list
    return {"model": recipe["model"]["type"], "step": step, "ema": ema, "directions": listed, "name": recipe["name"]}


def export_checkpoint(path: str | Path, output: str | Path | None = None) -> Path:
    """``i2i export``: an export bundle from a checkpoint folder, or from the latest checkpoint of a run folder.
    Weights come from ``model[_i].safetensors`` (prepare order), or the EMA copy where the recipe has one."""
    path = Path(path)
    if (path / CHECKPOINTS).is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise I2IError(f"{path}: run folder has no complete checkpoint")
        path = found
    if not (path / TRAINER_STATE).is_file():
        raise I2IError(f"{path}: not a checkpoint folder (no {TRAINER_STATE})")
    state = read_trainer_state(path)
    recipe = recipe_from_text((path / "recipe.yaml").read_text(encoding="utf-8"), str(path / "recipe.yaml"))
    from .. import models  # noqa: F401  (registers the built-in models)
    model_cls = MODELS.get(recipe["model"]["type"])
    sds = {}
    for name in state["export"]:
        i = state["nets"].index(name)
        sds[name] = load_file(str(path / ("model.safetensors" if i == 0 else f"model_{i}.safetensors")))
    if recipe.get("ema") is not None:
        # older checkpoints registered one EMA per exported net after the schedulers (one per optimizer group)
        names = [*(f"scheduler_{g}" for g in model_cls.optim_groups), *(f"ema_{n}" for n in state["export"])]
        saved = _saved_extra_state(path, names)
        for name in state["export"]:
            ema = saved[f"ema_{name}"]
            sds[name] = {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}
    out = Path(output) if output else path.parent.parent / f"export_step_{state['step']:08d}"
    meta = {**export_meta(recipe, model_cls.directions, state["step"], recipe.get("ema") is not None),
            "from_checkpoint": str(path), **state.get("export_info", {})}
    return write_export(recipe, sds, out, meta)
