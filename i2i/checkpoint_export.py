"""``i2i export``: an export bundle from any training checkpoint (Accelerate's save_state folder)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from .errors import I2IError
from .inference.export import write_export
from .recipe import recipe_from_text
from .registry import MODELS


def export_checkpoint(path: str | Path, output: str | Path | None = None) -> Path:
    """Weights come from model[_i].safetensors (prepare order) and EMA from its registered state, if any."""
    path = Path(path)
    if (path / "checkpoints").is_dir():
        pointer = path / "checkpoints" / "latest"
        if not pointer.is_file():
            raise I2IError(f"{path}: run folder has no complete checkpoint")
        path = path / "checkpoints" / pointer.read_text().strip()
    state_file = path / "trainer_state.json"
    if not state_file.is_file():
        raise I2IError(f"{path}: not a checkpoint folder (no trainer_state.json)")
    state = json.loads(state_file.read_text())
    recipe = recipe_from_text((path / "recipe.yaml").read_text(encoding="utf-8"), str(path / "recipe.yaml"))
    from .build import _import_builtins
    _import_builtins()
    model_cls = MODELS.get(recipe["model"]["type"])
    sds = {}
    for name in state["export"]:
        i = state["nets"].index(name)
        sds[name] = load_file(str(path / ("model.safetensors" if i == 0 else f"model_{i}.safetensors")))
    if recipe.get("ema") is not None:
        extra = path / "i2i_state.pt"
        saved = torch.load(extra, map_location="cpu", weights_only=True) if extra.is_file() else None
        first = len(model_cls.optim_groups)  # older checkpoints: registered after the schedulers, one per net
        for j, name in enumerate(state["export"]):
            ema = saved[f"ema_{name}"] if saved is not None else torch.load(
                path / f"custom_checkpoint_{first + j}.pkl", map_location="cpu", weights_only=True)
            sds[name] = {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}
    run_dir = path.parent.parent
    out = Path(output) if output else run_dir / f"export_step_{state['step']:08d}"
    meta = {"model": recipe["model"]["type"], "step": state["step"], "ema": recipe.get("ema") is not None,
            "directions": dict(model_cls.directions), "name": recipe["name"], "from_checkpoint": str(path),
            **state.get("export_info", {})}
    return write_export(recipe, sds, out, meta)
