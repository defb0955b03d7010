"""Export bundle: resolved recipe + one safetensors file per exported net + meta.json. Loading never unpickles."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import I2IError
from .recipe import Recipe, recipe_from_text

FORMAT_VERSION = 1


@dataclass
class Export:
    path: Path
    recipe: Recipe
    meta: dict
    nets: dict[str, nn.Module]

    def generator(self, direction: str | None = None) -> tuple[str, nn.Module]:
        directions: dict[str, str] = self.meta["directions"]
        if direction is None:
            direction = next(iter(directions))
        if direction not in directions:
            raise I2IError(f"{self.path}: model '{self.meta['model']}' has no direction '{direction}'; "
                           f"valid: {', '.join(directions)}")
        name = directions[direction]
        return name, self.nets[name]


def write_export(recipe: Recipe, state_dicts: dict[str, dict[str, torch.Tensor]], out_dir: Path,
                 meta: dict[str, Any]) -> Path:
    """Write the bundle into a temporary sibling, then swap it into place: a crash never leaves half an export."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
        files = {}
        for name, sd in state_dicts.items():
            tensors = {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}
            save_file(tensors, str(tmp / f"{name}.safetensors"))
            files[name] = f"{name}.safetensors"
        full_meta = {"format": FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **meta,
                     "files": files}
        (tmp / "meta.json").write_text(json.dumps(full_meta, indent=2), encoding="utf-8")
        old = out_dir.with_name(f".{out_dir.name}.old")
        if out_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def resolve_export_dir(path: str | os.PathLike) -> Path:
    """An export folder, or a run folder holding export/."""
    p = Path(path)
    for candidate in (p, p / "export"):
        if (candidate / "meta.json").is_file():
            return candidate
    if not p.exists():
        raise I2IError(f"{p}: no such export or run folder")
    raise I2IError(f"{p}: not an export (no meta.json here or in {p / 'export'}); make one from a checkpoint "
                   f"with `i2i export {p}`")


def load_export(path: str | os.PathLike, device: str | torch.device = "cpu") -> Export:
    """Rebuild the exported nets from the bundle alone (weights via safetensors: no code runs from it)."""
    from .build import build_net

    root = resolve_export_dir(path)
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        recipe = recipe_from_text((root / "recipe.yaml").read_text(encoding="utf-8"), str(root / "recipe.yaml"))
    except (OSError, ValueError) as exc:
        raise I2IError(f"{root}: unreadable export ({exc})") from None
    nets = {}
    for name, filename in meta["files"].items():
        net = build_net(recipe, name, file=str(root / "recipe.yaml"))
        try:
            state = load_file(str(root / filename))
            net.load_state_dict(state)
        except Exception as exc:
            raise I2IError(f"{root / filename}: cannot load weights for nets.{name}: {exc}") from None
        nets[name] = net.to(device).eval()
    return Export(path=root, recipe=recipe, meta=meta, nets=nets)
