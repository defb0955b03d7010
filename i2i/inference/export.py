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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import I2IError
from ..recipe import Recipe, recipe_from_text

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


def find_export(path: str | os.PathLike) -> Path | None:
    """The export at ``path``: the folder itself, or the export/ folder of a run; None when neither has meta.json."""
    p = Path(path).expanduser()
    return next((c for c in (p, p / "export") if (c / "meta.json").is_file()), None)


def resolve_export_dir(path: str | os.PathLike) -> Path:
    """An export folder, or a run folder holding export/."""
    p = Path(path)
    found = find_export(p)
    if found is not None:
        return found
    if not p.exists():
        raise I2IError(f"{p}: no such export or run folder")
    raise I2IError(f"{p}: not an export (no meta.json here or in {p / 'export'}); make one from a checkpoint "
                   f"with `i2i export {p}`")


TRUSTED_ENV = "I2I_TRUSTED_MODULES"  # comma-separated modules an export may import without --allow-code


def code_in_export(recipe: dict, names: list[str]) -> list[tuple[str, str]]:
    """(recipe key, module) for every piece of user code an export would import: plugins and dotted-path types."""
    found = [(f"plugins[{i}]", str(m)) for i, m in enumerate(recipe.get("plugins") or [])]
    for name in names:
        kind = ((recipe.get("nets") or {}).get(name) or {}).get("type")
        if isinstance(kind, str) and ":" in kind:
            found.append((f"nets.{name}.type", kind.partition(":")[0]))
    return found


def check_export_code(recipe: dict, names: list[str], root: Path, allow: bool | list[str] | tuple = ()) -> None:
    """An export is data: it may import code only from i2i itself or from modules the user allowed.

    ``allow`` is True (trust everything: --trust-code) or module names (--allow-code, plus $I2I_TRUSTED_MODULES);
    a module is allowed when it or a parent package is listed.
    """
    if allow is True:
        return
    allowed = {m.strip() for m in [*allow, *os.environ.get(TRUSTED_ENV, "").split(",")] if m.strip()}
    for key, module in code_in_export(recipe, names):
        parts = module.split(".")
        if parts[0] == "i2i" or any(".".join(parts[:i]) in allowed for i in range(1, len(parts) + 1)):
            continue
        raise I2IError(f"{root / 'recipe.yaml'}: {key} imports module '{module}': an export is data, and importing "
                       f"a module runs its code. If you trust it, pass --allow-code {module} (or --trust-code), or "
                       f"list it in ${TRUSTED_ENV}")


def load_export(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                allow_code: bool | list[str] | tuple = ()) -> Export:
    """Rebuild the exported nets from the bundle alone (weights via safetensors: loading never unpickles).

    Dotted-path net types and plugins are imported only when ``allow_code`` allows them (see check_export_code).
    """
    from ..nets import build_net

    root, meta, recipe = _read_bundle(path)
    check_export_code(recipe, list(meta.get("files", {})), root, allow_code)
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


def _read_bundle(path: str | os.PathLike) -> tuple[Path, dict, Recipe]:
    root = resolve_export_dir(path)
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        recipe = recipe_from_text((root / "recipe.yaml").read_text(encoding="utf-8"), str(root / "recipe.yaml"))
    except (OSError, ValueError) as exc:
        raise I2IError(f"{root}: unreadable export ({exc})") from None
    return root, meta, recipe


def _net_difference(a: Any, b: Any, key: str) -> str | None:
    """The first constructor argument where two recipe net entries differ (defaults filled in); None when equal."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None if a == b else f"{key}: {a!r} in A, {b!r} in B"
    if a.get("type") != b.get("type"):
        return f"{key}.type: {a.get('type')!r} in A, {b.get('type')!r} in B"
    cls = None
    try:
        from .. import nets  # noqa: F401  (registers the built-in nets)
        from ..registry import NETS, config_value
        cls = NETS.get(a.get("type"))
    except I2IError:  # an unknown or unimportable type: compare the arguments as written
        pass
    for k in sorted(set(a) | set(b), key=str):
        va = config_value(cls, a, k) if cls is not None else a.get(k, "absent")
        vb = config_value(cls, b, k) if cls is not None else b.get(k, "absent")
        if va != vb:
            return f"{key}.{k}: {va!r} in A, {vb!r} in B"
    return None


def interpolate_exports(a: str | os.PathLike, b: str | os.PathLike, alpha: float,
                        output: str | os.PathLike) -> Path:
    """Network interpolation (ESRGAN): an export whose floating tensors are ``(1 - alpha) * A + alpha * B``.

    A and B must be exports of one architecture: the same exported nets, equal recipe ``nets`` entries for them
    and identical state_dict keys, shapes and dtypes. Integer and bool buffers (BatchNorm's num_batches_tracked)
    are taken from A. The recipe and meta of A are kept; meta records the sources and alpha. Written atomically
    like every export.
    """
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
        raise I2IError(f"--alpha must be between 0 and 1 (0 gives A, 1 gives B), got {alpha!r}")
    root_a, meta_a, recipe_a = _read_bundle(a)
    root_b, meta_b, recipe_b = _read_bundle(b)
    out = Path(output)
    dst = out.resolve()
    for given, root in ((a, root_a), (b, root_b)):
        src = root.resolve()
        if dst in (src, Path(given).resolve()) or dst in src.parents or src in dst.parents:
            raise I2IError(f"--output {out} is or overlaps the input export {given}; choose a new folder "
                           "(interpolate never replaces its inputs)")
    files_a, files_b = meta_a.get("files", {}), meta_b.get("files", {})
    if sorted(files_a) != sorted(files_b):
        raise I2IError(f"{root_a} and {root_b} export different nets: {sorted(files_a)} in A, {sorted(files_b)} "
                       "in B; interpolation needs two exports of the same architecture")
    for name in sorted(files_a):
        diff = _net_difference(recipe_a.get("nets", {}).get(name), recipe_b.get("nets", {}).get(name),
                               f"nets.{name}")
        if diff:
            raise I2IError(f"{root_a} and {root_b} are different architectures (recipe {diff}); interpolation "
                           "needs two exports of the same architecture")
    blended: dict[str, dict[str, torch.Tensor]] = {}
    for name in sorted(files_a):
        try:
            sd_a, sd_b = load_file(str(root_a / files_a[name])), load_file(str(root_b / files_b[name]))
        except (OSError, SafetensorError) as exc:
            raise I2IError(f"cannot read the weights of nets.{name}: {exc}") from None
        for key in [*sd_a, *(k for k in sd_b if k not in sd_a)]:
            if key not in sd_a or key not in sd_b:
                raise I2IError(f"different architectures: nets.{name} key '{key}' is only in "
                               f"{'A' if key in sd_a else 'B'} ({root_a if key in sd_a else root_b})")
            ta, tb = sd_a[key], sd_b[key]
            if ta.shape != tb.shape or ta.dtype != tb.dtype:
                raise I2IError(f"different architectures: nets.{name} key '{key}' is {tuple(ta.shape)} {ta.dtype} "
                               f"in A, {tuple(tb.shape)} {tb.dtype} in B")
        out_sd = {}
        for key, ta in sd_a.items():
            if ta.is_floating_point():
                tb = sd_b[key]
                out_sd[key] = ((1.0 - alpha) * ta.double() + alpha * tb.double()).to(ta.dtype)
            else:
                out_sd[key] = ta
        blended[name] = out_sd
    meta = {k: v for k, v in meta_a.items() if k not in ("files", "created", "format")}
    meta["interpolated"] = {"a": str(root_a), "b": str(root_b), "alpha": float(alpha),
                            "a_step": meta_a.get("step"), "b_step": meta_b.get("step")}
    return write_export(recipe_a, blended, out, meta)
