"""Export bundle: resolved recipe + one safetensors file per exported net + meta.json. Loading never unpickles."""
from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.io import show_path, umask_mode
from ..errors import I2IError, short_repr
from ..recipe import Recipe, recipe_from_text

log = logging.getLogger("i2i")

FORMAT_VERSION = 1


@dataclass
class Export:
    path: Path
    recipe: Recipe
    meta: dict
    nets: dict[str, nn.Module]

    def generator(self, direction: str | None = None) -> tuple[str, nn.Module]:
        """The net that translates in ``direction`` (default: the first), and the name of the exported net whose
        size rules apply to its input. A direction that names several nets gets a ``Chain`` of them."""
        directions: dict[str, str | list[str]] = self.meta.get("directions") or {}
        if not directions:
            raise I2IError(f"{self.path}: this export ('{self.meta.get('model')}') has no generator to translate with "
                           "(its meta.json lists no directions)")
        if direction is None:
            direction = next(iter(directions))
        if direction not in directions:
            raise I2IError(f"{self.path}: model '{self.meta.get('model')}' has no direction '{direction}'; "
                           f"valid: {', '.join(directions)}")
        names = chain_names(directions[direction])
        if len(names) == 1:
            return names[0], self.nets[names[0]]
        return names[0], Chain([self.nets[n] for n in names])


def chain_names(target: str | list[str] | tuple[str, ...]) -> list[str]:
    """The exported nets a direction runs, in order: one name, or a list of names."""
    return [target] if isinstance(target, str) else list(target)


class Chain(nn.Module):
    """Exported nets applied in sequence for one direction (an encoder then a decoder: an autoencoder's G(E(x)),
    UNIT's decode_B(encode_A(x))). Each net gets the previous one's output, or its first element when it returns a
    tuple or list (an encoder's (mu, logvar) passes mu). The input is the first net's: its ``in_channels``."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        self.stages = nn.ModuleList(nets)
        self.in_channels = getattr(nets[0], "in_channels", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for net in self.stages:
            x = net(x)
            if isinstance(x, (tuple, list)):
                x = x[0]
        return x


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
        for written in tmp.iterdir():  # mkdtemp makes the folder 0o700 (safetensors files may be 0o600 too)
            written.chmod(umask_mode())
        tmp.chmod(umask_mode(folder=True))  # the export gets what the umask gives any new folder
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
    plugins = recipe.get("plugins") or []
    found = [(f"plugins[{i}]", str(m)) for i, m in enumerate(plugins if isinstance(plugins, list) else [plugins])]
    nets = recipe.get("nets") if isinstance(recipe.get("nets"), dict) else {}
    for name in names:
        entry = nets.get(name)
        kind = entry.get("type") if isinstance(entry, dict) else None
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


def bundle_file(root: Path, name: Any, where: str) -> Path:
    """``root / name`` for a file an export names, checked: a relative name that stays inside the export folder with
    every symlink resolved, of a regular file that exists. ``where`` says who names it in errors (I2IError, exit 2):
    an export is data, and one whose meta.json says ``../elsewhere/g.safetensors`` or ``/etc/passwd`` is refused."""
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        raise I2IError(f"{where} must be the name of a file in the export folder, got {short_repr(name)}")
    shown = where if where.endswith(f"/{name}") else f"{where} ({short_repr(name)})"
    path = root / name
    try:
        base, target = root.resolve(strict=True), path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise I2IError(f"{shown} cannot be resolved: {exc}") from None
    if Path(name).is_absolute() or base not in target.parents:
        raise I2IError(f"{shown} leads outside the export folder (it resolves to {show_path(target)}): every file "
                       f"of an export must lie inside its folder {show_path(base)}; refused")
    try:
        mode = target.stat().st_mode
    except OSError as exc:
        raise I2IError(f"{shown}: no such file in {show_path(root)} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise I2IError(f"{shown} is not a regular file")
    return path


def export_weights(root: Path, files: Any, name: str) -> Path:
    """The weights file of net ``name`` that meta.json's ``files`` names, checked by ``bundle_file``."""
    where = f"{show_path(root / 'meta.json')}: files.{name}"
    path = bundle_file(root, files.get(name) if isinstance(files, dict) else None, where)
    if path.suffix != ".safetensors":
        raise I2IError(f"{where} ({short_repr(path.name)}) is not a .safetensors file (exports hold weights only as "
                       "safetensors: loading never unpickles)")
    return path


def safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor name: (dtype as safetensors names it, e.g. 'F32', shape)} from the file header: no tensor data is
    read. Raises what safetensors raises for a damaged or foreign file."""
    with safe_open(str(path), framework="pt") as f:
        slices = {k: f.get_slice(k) for k in f.keys()}  # noqa: SIM118  (not a dict)
        return {k: (s.get_dtype(), tuple(s.get_shape())) for k, s in slices.items()}


def mismatch(net_shapes: dict[str, tuple[int, ...]], file_shapes: dict[str, tuple[int, ...]],
             name: str) -> str | None:
    """The first tensor (in the net's order) whose name or shape differs, described; None when all match."""
    for k, shape in net_shapes.items():
        if k not in file_shapes:
            return f"tensor '{k}' {shape} of nets.{name} is not in the export"
        if file_shapes[k] != shape:
            return f"tensor '{k}' is {file_shapes[k]} in the export but {shape} in nets.{name}"
    extra = [k for k in file_shapes if k not in net_shapes]
    if extra:
        return f"the export has tensor '{extra[0]}' {file_shapes[extra[0]]}, which nets.{name} lacks"
    return None


def dtype_kind(dtype: str | torch.dtype) -> str:
    """'float', 'integer', 'bool' or 'complex' for a torch dtype or a safetensors dtype name ('F16', 'I64' ...)."""
    if isinstance(dtype, torch.dtype):
        if dtype == torch.bool:
            return "bool"
        return "complex" if dtype.is_complex else "float" if dtype.is_floating_point else "integer"
    text = str(dtype).upper()
    if text == "BOOL":
        return "bool"
    return "complex" if text.startswith("C") else "float" if text.startswith(("F", "BF")) else \
        "integer" if text.startswith(("I", "U")) else text


def dtype_mismatch(net_dtypes: dict[str, torch.dtype], file_dtypes: dict[str, Any], name: str) -> str | None:
    """The first tensor whose kind of number differs (integers where nets.<name> holds floats, say); None when all
    agree. Float widths may differ (F16 weights load into an F32 net, as load_state_dict converts them)."""
    for k, dtype in net_dtypes.items():
        if k in file_dtypes and dtype_kind(file_dtypes[k]) != dtype_kind(dtype):
            return (f"tensor '{k}' holds {dtype_kind(file_dtypes[k])} numbers ({file_dtypes[k]}) in the export but "
                    f"nets.{name} expects {dtype_kind(dtype)} ({str(dtype).removeprefix('torch.')})")
    return None


def fit_problem(state: dict[str, torch.Tensor], header: dict[str, tuple[Any, tuple[int, ...]]],
                 name: str) -> str | None:
    """How the tensors a file holds (name -> (dtype, shape)) fail to fit a net's state_dict, or None."""
    return (mismatch({k: tuple(v.shape) for k, v in state.items()}, {k: s for k, (_, s) in header.items()}, name)
            or dtype_mismatch({k: v.dtype for k, v in state.items()}, {k: d for k, (d, _) in header.items()}, name))


def _load_net(recipe: Recipe, root: Path, name: str, weights: Path) -> nn.Module:
    """Net ``name`` with its weights. The net is first built on the meta device and compared with the file's
    header (names, shapes, kinds of number), so an edited recipe (``base_channels: 4096``) or a foreign file is
    refused before any memory is allocated for it; only a net that fits is built for real and loaded."""
    from ..nets import build_net
    recipe_file = str(root / "recipe.yaml")
    nets = recipe.get("nets") if isinstance(recipe.get("nets"), dict) else {}
    if not isinstance(nets.get(name), dict):
        what = "missing" if name not in nets else "not a net entry (a mapping with type:)"
        raise I2IError(f"{recipe_file}: nets.{name} is {what}, but meta.json lists weights for it; the recipe "
                       "does not belong to these weights")
    fit = f"{show_path(weights)}: the weights do not fit nets.{name} of {recipe_file}"
    try:
        header = safetensors_header(weights)
    except Exception as exc:  # noqa: BLE001  a damaged or foreign file: say which, with the library's words
        raise I2IError(f"{show_path(weights)}: cannot read the weights of nets.{name} as safetensors: "
                       f"{' '.join(str(exc).split())}") from None
    from ..registry import NETS, load_plugins
    load_plugins(recipe.get("plugins"), file=recipe_file)  # imported here, not under the meta device (a module's
    NETS.get(nets[name].get("type"), key=f"nets.{name}.type", file=recipe_file)  # own tensors would land there)
    try:
        with torch.device("meta"):
            skeleton = build_net(recipe, name, file=recipe_file)
    except I2IError:
        raise
    except Exception as exc:  # noqa: BLE001  a net the meta device cannot build: checked once built for real
        log.debug("nets.%s cannot be built on the meta device (%s): checked after building", name, exc)
    else:
        problem = fit_problem(skeleton.state_dict(), header, name)
        if problem:
            raise I2IError(f"{fit}: {problem} (was recipe.yaml edited, or the weights file replaced?)")
        del skeleton
    net = build_net(recipe, name, file=recipe_file)
    problem = fit_problem(net.state_dict(), header, name)  # for a net the meta device could not build
    if problem:
        raise I2IError(f"{fit}: {problem} (was recipe.yaml edited, or the weights file replaced?)")
    try:
        net.load_state_dict(load_file(str(weights)))
    except Exception as exc:  # noqa: BLE001
        raise I2IError(f"{show_path(weights)}: cannot load weights for nets.{name}: {exc}") from None
    return net


def load_export(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                allow_code: bool | list[str] | tuple = ()) -> Export:
    """Rebuild the exported nets from the bundle alone (weights via safetensors: loading never unpickles).

    Dotted-path net types and plugins are imported only when ``allow_code`` allows them (see check_export_code).
    """
    root, meta, recipe, weights = _read_bundle(path)
    check_export_code(recipe, list(weights), root, allow_code)
    nets = {}
    for name, file in weights.items():
        nets[name] = _load_net(recipe, root, name, file).to(device).eval()
    return Export(path=root, recipe=recipe, meta=meta, nets=nets)


MAX_BUNDLE_TEXT = 16 * 2**20  # meta.json and recipe.yaml larger than this are not an export's


def _read_bundle(path: str | os.PathLike) -> tuple[Path, dict, Recipe, dict[str, Path]]:
    """(folder, meta, recipe, {net name: weights file}), every file checked to lie inside the folder."""
    root = resolve_export_dir(path)
    texts = {}
    for rel in ("meta.json", "recipe.yaml"):
        file = bundle_file(root, rel, f"{show_path(root / rel)}")
        if file.stat().st_size > MAX_BUNDLE_TEXT:
            raise I2IError(f"{show_path(file)}: {file.stat().st_size:,} bytes, too large for an export's {rel}")
        try:
            texts[rel] = file.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise I2IError(f"{root}: unreadable export ({exc})") from None
    try:
        meta = json.loads(texts["meta.json"])
        recipe = recipe_from_text(texts["recipe.yaml"], str(root / "recipe.yaml"))
    except ValueError as exc:
        raise I2IError(f"{root}: unreadable export ({exc})") from None
    where = show_path(root / "meta.json")
    if not isinstance(meta, dict):
        raise I2IError(f"{where}: not an export's meta.json (a JSON object is expected, got {type(meta).__name__})")
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise I2IError(f"{where}: 'files' must map net names to the safetensors files in the export folder, got "
                       f"{short_repr(files)}")
    directions = meta.get("directions", {})
    if not isinstance(directions, dict) or not all(_direction_ok(v, files) for v in directions.values()):
        raise I2IError(f"{where}: 'directions' must map directions (AtoB ...) to exported nets ({', '.join(files)}) "
                       f"or lists of them, got {short_repr(directions)}")
    return root, meta, recipe, {name: export_weights(root, files, name) for name in files}


def _direction_ok(target: Any, files: dict) -> bool:
    """A direction names one exported net, or a non-empty list of them."""
    if isinstance(target, str):
        return target in files
    return isinstance(target, list) and bool(target) and all(isinstance(n, str) and n in files for n in target)


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
    root_a, meta_a, recipe_a, weights_a = _read_bundle(a)
    root_b, meta_b, recipe_b, weights_b = _read_bundle(b)
    out = Path(output)
    dst = out.resolve()
    for given, root in ((a, root_a), (b, root_b)):
        src = root.resolve()
        if dst in (src, Path(given).resolve()) or dst in src.parents or src in dst.parents:
            raise I2IError(f"--output {out} is or overlaps the input export {given}; choose a new folder "
                           "(interpolate never replaces its inputs)")
    files_a, files_b = weights_a, weights_b
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
            sd_a, sd_b = load_file(str(files_a[name])), load_file(str(files_b[name]))
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
