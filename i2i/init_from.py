"""``model.init_from``: start named nets from an earlier export (ESRGAN's stage 2 starts G from stage 1).

    model: {type: esrgan, init_from: {g: runs/esrgan_psnr/export}}

loads the export's ``g.safetensors`` into ``nets.g`` right after the nets are built, before the model, the
optimizers and the EMA copy exist. Any net of any model can be named; the export's net of the same name is read.
The load is strict: every tensor name and shape must match, and the first mismatch is reported with the key.
Weights are read with safetensors only (nothing is unpickled).

Checked when the recipe is validated (``i2i check`` included): the folder is an export (or a run folder holding
``export/``), it has the net, and its tensor shapes fit the net the recipe describes (read from the file header,
net built on the meta device). Resuming loads the checkpoint after this, so a checkpoint's weights always win.
An export keeps the key in its recipe.yaml as a record; loading that export never reads the earlier one.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from .errors import I2IError, RecipeError
from .inference.export import (
    export_weights,
    find_export,
    fit_problem,
    safetensors_header,
)

log = logging.getLogger("i2i")
KEY = "init_from"


def split_model_config(cfg: Any) -> tuple[Any, Any]:
    """(the model mapping without ``init_from``, the ``init_from`` value or None)."""
    if not isinstance(cfg, dict) or KEY not in cfg:
        return cfg, None
    return {k: v for k, v in cfg.items() if k != KEY}, cfg[KEY]


def _export_root(path: str, *, key: str, file: str | None) -> Path:
    found = find_export(path)
    if found is not None:
        return found
    p = Path(path).expanduser()
    where = "" if p.is_absolute() else f" (relative to {Path.cwd()})"
    what = "no such folder" if not p.exists() else "not an export (no meta.json in it or in its export/ folder)"
    raise RecipeError(f"{what}{where}: init_from needs the export of an earlier run; train that stage first "
                      "(its export is <run folder>/export), or make one from a checkpoint with `i2i export RUN`",
                      file=file, key=key, value=path)


def _weights_file(name: str, path: Any, *, key: str, file: str | None) -> Path:
    if not isinstance(path, str) or not path.strip():
        raise RecipeError("must be the path of an export folder (or of a run folder holding export/)", file=file,
                          key=key, value=path)
    root = _export_root(path, key=key, file=file)
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecipeError(f"unreadable export meta.json in {root}: {exc}", file=file, key=key, value=path) from None
    files = meta.get("files") if isinstance(meta, dict) else None
    files = files if isinstance(files, dict) else {}
    if name not in files:
        raise RecipeError(f"the export {root} has no net '{name}' (it exports: {', '.join(files) or 'nothing'}); "
                          f"init_from loads the export's net of the same name as nets.{name}", file=file, key=key,
                          value=path)
    try:  # inside the export folder, symlinks resolved, a regular .safetensors file (as load_export checks)
        return export_weights(root, files, name)
    except I2IError as exc:
        raise RecipeError(str(exc), file=file, key=key, value=path) from None


def _file_header(weights: Path, *, key: str, file: str | None) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor names, dtypes and shapes from the safetensors header (no tensor data is read)."""
    try:
        return safetensors_header(weights)
    except Exception as exc:  # noqa: BLE001  a damaged or foreign file: say which, with the library's words
        raise RecipeError(f"cannot read {weights} as safetensors: {exc}", file=file, key=key,
                          value=str(weights)) from None



def _fit_error(weights: Path, name: str, problem: str, *, key: str, file: str | None) -> RecipeError:
    return RecipeError(f"the weights in {weights} do not fit nets.{name}: {problem} (nets.{name} must be the same "
                       f"architecture as the export's; compare with {weights.parent / 'recipe.yaml'})", file=file,
                       key=key, value=str(weights.parent))


def check_init_from(recipe: dict, *, file: str | None,
                    make_net: Callable[[str], nn.Module] | None = None) -> dict[str, Path]:
    """Validate ``model.init_from``; returns {net name: safetensors file}. With ``make_net`` (builds a net of the
    recipe by name), the file's shapes are compared with the net's, built on the meta device."""
    spec = split_model_config(recipe.get("model"))[1]
    if spec is None:
        return {}
    if not isinstance(spec, dict) or not spec:
        raise RecipeError("init_from maps net names to exports, e.g. {g: runs/esrgan_psnr/export}, or is null",
                          file=file, key=f"model.{KEY}", value=spec)
    nets = recipe.get("nets") if isinstance(recipe.get("nets"), dict) else {}
    found: dict[str, Path] = {}
    for name, path in spec.items():
        key = f"model.{KEY}.{name}"
        if name not in nets:
            raise RecipeError("no net of this name in nets: init_from loads an export's net into the recipe's net of "
                              "the same name", file=file, key=key, value=name, choices=list(nets))
        weights = _weights_file(name, path, key=key, file=file)
        found[name] = weights
        if make_net is None:
            continue
        header = _file_header(weights, key=key, file=file)
        try:
            with torch.device("meta"):
                net_state = make_net(name).state_dict()
        except (NotImplementedError, RuntimeError, ValueError, TypeError):
            continue  # the meta device cannot build this net: the load at build time checks the shapes
        problem = fit_problem(net_state, header, name)
        if problem:
            raise _fit_error(weights, name, problem, key=key, file=file)
    return found


def apply_init_from(recipe: dict, nets: dict[str, nn.Module], *, file: str | None) -> None:
    """Load the ``model.init_from`` weights into the built nets (strict names and shapes)."""
    for name, weights in check_init_from(recipe, file=file).items():
        key = f"model.{KEY}.{name}"
        try:
            state = load_file(str(weights))  # safetensors: plain tensors, no code
        except Exception as exc:  # noqa: BLE001
            raise RecipeError(f"cannot read {weights} as safetensors: {exc}", file=file, key=key,
                              value=str(weights)) from None
        problem = fit_problem(nets[name].state_dict(), {k: (v.dtype, tuple(v.shape)) for k, v in state.items()},
                              name)
        if problem:
            raise _fit_error(weights, name, problem, key=key, file=file)
        nets[name].load_state_dict(state, strict=True)
        log.info("nets.%s initialised from %s", name, weights)
