"""Checkpoint files of a run, in one place: where they are (``latest``), writing one atomically with rotation,
reading one back for a resume, and turning one into an export (``i2i export``).

A checkpoint folder ``<run>/checkpoints/step_N`` holds Accelerate's ``save_state`` files (nets as
``model[_i].safetensors`` in prepare order, optimizers, RNG), ``i2i_state.pt`` (schedulers, EMAs, image pools:
plain tensors, loaded with ``weights_only``), ``recipe.yaml`` and ``trainer_state.json``. It is written as
``.tmp_step_N`` and renamed when complete; the ``latest`` pointer file is replaced atomically after that.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..errors import I2IError
from ..inference.export import write_export
from ..recipe import Recipe, recipe_from_text
from ..registry import MODELS

CHECKPOINTS = "checkpoints"
EXTRA_STATE = "i2i_state.pt"
TRAINER_STATE = "trainer_state.json"
LATEST = "latest"


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


def save_checkpoint(accelerator: Any, run_dir: Path, step: int, *, recipe: Recipe, extra_state: dict,
                    trainer_state: dict, keep: int) -> Path:
    """Write the checkpoint of ``step`` on every process, atomically: ``save_state`` into a temporary folder,
    the rest on the main process, rename, move ``latest``, and remove all but the newest ``keep``. A failure
    (disk full...) removes the partial folder and re-raises; ``latest`` still names the last complete one."""
    folder = Path(run_dir) / CHECKPOINTS
    final, tmp = step_folder(run_dir, step), temporary_folder(run_dir, step)
    try:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            torch.save({k: v.state_dict() for k, v in extra_state.items()}, tmp / EXTRA_STATE)
            (tmp / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
            (tmp / TRAINER_STATE).write_text(json.dumps({"step": step, **trainer_state}), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            pointer_tmp = folder / ".latest.tmp"
            pointer_tmp.write_text(final.name)
            os.replace(pointer_tmp, folder / LATEST)
            for old in sorted(p for p in folder.glob("step_*") if p.is_dir())[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()
    return final


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
    return {"model": recipe["model"]["type"], "step": step, "ema": ema, "directions": dict(directions),
            "name": recipe["name"]}


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
