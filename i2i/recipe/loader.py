"""YAML recipe -> plain dict: ``base:`` inheritance (deep merge), dotted overrides, early checks."""
from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..errors import RecipeError

TOP_LEVEL_KEYS = ("name", "seed", "plugins", "data", "model", "nets", "losses", "optim", "schedule", "ema",
                  "train", "monitor", "eval", "translate")
REQUIRED_SECTIONS = ("data", "model", "nets", "losses", "optim", "train")
SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
MAX_FILE_BYTES = 1 << 20      # a recipe is a small text file; anything larger is a wrong path (or a YAML bomb)
MAX_VALUES = 100_000          # values after YAML aliases are expanded ("billion laughs" stays small on disk)
MAX_DEPTH = 32                # nesting levels of mappings and lists
MAX_BASE_CHAIN = 32           # files in one base: chain
MAX_NAME = 100                # characters of a recipe name (it names the run folder)
SEED_RANGE = (0, 2**32 - 1)   # what numpy's and Python's seeding accept (Accelerate's set_seed seeds both)


class Recipe(dict):
    """A resolved recipe: a plain nested dict plus the file it came from (for error messages)."""

    source: str = "<recipe>"

    @classmethod
    def of(cls, data: dict, source: str) -> Recipe:
        r = cls(data)
        r.source = source
        return r

    def to_yaml(self) -> str:
        return yaml.safe_dump(dict(self), sort_keys=False, default_flow_style=None, width=110)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (PyYAML silently keeps the last, hiding typos).

    The pure-Python loader on purpose: LibYAML's composer recurses in C and crashes on [[[[... 100000 deep.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *base' merges are meant to be overridden by the keys beside them
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"duplicate key '{key}' (first at line {seen[key].line + 1}); YAML would silently keep only "
                    "the last one", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """'at line 3, column 7: found character '\\t' that cannot start any token' from a PyYAML error."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["unreadable"])[0]
    return f"{where}: {problem}"


def safe_load(text: str) -> Any:
    """yaml.safe_load that refuses duplicate keys (raises yaml.YAMLError, or RecursionError when nested deeply)."""
    loader = StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _read_yaml(path: Path, *, chain: tuple[Path, ...]) -> dict:
    hint = f" (the base: of {chain[-1]})" if chain else ""
    file = str(path)
    try:
        if path.is_dir():
            raise RecipeError(f"this is a folder, not a recipe file{hint}", file=file)
        if not path.is_file():
            what = "recipe file not found" if not path.exists() else "not a regular file"
            raise RecipeError(f"{what}{hint}", file=file)
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RecipeError(f"{size} bytes is too large for a recipe (at most {MAX_FILE_BYTES}); is this the "
                              f"right file?{hint}", file=file)
        text = path.read_text(encoding="utf-8")
        data = safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"not valid YAML{_yaml_problem(exc)}{hint}", file=file) from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"not a text file: byte {exc.start} is not UTF-8{hint}", file=file) from None
    except RecursionError:
        raise RecipeError(f"not a usable recipe: nested too deeply{hint}", file=file) from None
    except (OSError, ValueError) as exc:  # permissions, a name too long, a NUL in the path
        raise RecipeError(f"cannot read recipe: {exc}{hint}", file=file) from None
    if data is None:
        raise RecipeError(f"the recipe is empty; it needs the sections {', '.join(REQUIRED_SECTIONS)}{hint}",
                          file=file)
    if not isinstance(data, dict):
        raise RecipeError(f"a recipe must be a mapping of sections (data:, model:, nets: ...){hint}", file=file,
                          value=type(data).__name__)
    return _unshare(data, file=file)


def _unshare(node: Any, *, file: str | None = None, key: str = "", _state: list | None = None,
             _depth: int = 0) -> Any:
    """YAML anchors (g_ba: *gen) load as one shared object; an override of one must not change the other.

    Copies each shared node, and refuses what would not fit: deep nesting, self-referencing anchors and
    alias expansion beyond MAX_VALUES values.
    """
    state = [0] if _state is None else _state
    state[0] += 1
    if state[0] > MAX_VALUES:
        raise RecipeError(f"the recipe expands to more than {MAX_VALUES} values (YAML aliases repeated inside "
                          "each other?)", file=file, key=key or None)
    if isinstance(node, (dict, list)) and _depth >= MAX_DEPTH:
        raise RecipeError(f"nested more than {MAX_DEPTH} levels deep (a self-referencing YAML alias?)", file=file,
                          key=key or None)
    if isinstance(node, dict):
        return {k: _unshare(v, file=file, key=f"{key}.{k}" if key else str(k), _state=state, _depth=_depth + 1)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_unshare(v, file=file, key=f"{key}[{i}]", _state=state, _depth=_depth + 1)
                for i, v in enumerate(node)]
    return node


def deep_merge(base: dict, over: dict) -> dict:
    """Mappings merge key by key; any other value (lists included) replaces the base value.

    A component mapping whose ``type:`` changes replaces the base component: its arguments belong to another class.
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        if (isinstance(v, dict) and isinstance(out.get(k), dict)
                and not ("type" in v and v["type"] != out[k].get("type"))):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    try:
        path = path.resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL in the name, a symlink loop
        where = f" (the base: of {chain[-1]})" if chain else ""
        raise RecipeError(f"not a usable recipe path: {exc}{where}", file=str(path)) from None
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise RecipeError(f"cyclic base: chain {cycle}", file=str(chain[0]), key="base")
    if len(chain) >= MAX_BASE_CHAIN:
        raise RecipeError(f"base: chain longer than {MAX_BASE_CHAIN} files", file=str(chain[0]), key="base")
    data = _read_yaml(path, chain=chain)
    base = data.pop("base", None)
    if "base" in data or base is None:
        return data
    if not isinstance(base, str) or not base.strip():
        raise RecipeError("base must be the path of a recipe file, relative to this one", file=str(path), key="base",
                          value=base)
    target = path.parent / base
    bundled = _bundled_name(base, target)  # `base: cyclegan`: a bundled recipe, also from an installed i2i
    return deep_merge(_resolve(bundled or target, (*chain, path)), data)


def parse_override(text: str, *, file: str | None = None) -> tuple[list[str], Any]:
    """'train.max_steps=500' -> (['train', 'max_steps'], 500); the value is read as YAML."""
    if not isinstance(text, str) or "=" not in text:
        raise RecipeError("an override is KEY.PATH=VALUE, e.g. train.max_steps=500", file=file, value=text)
    key, _, raw = text.partition("=")
    parts = key.strip().split(".")
    if not all(p.strip() and p == p.strip() for p in parts):
        raise RecipeError("an override key is a dotted path of names such as data.root, before the '='", file=file,
                          value=text)
    dotted = ".".join(parts)
    try:
        value = safe_load(raw) if raw.strip() else None
    except (yaml.YAMLError, RecursionError) as exc:
        if raw.strip()[:1] in ("[", "{", '"', "'", "&", "*", "!", "|", ">"):  # meant as YAML, and broken
            problem = _yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else ": nested too deeply"
            raise RecipeError(f"override value is not valid YAML{problem}", file=file, key=dotted,
                              value=raw) from None
        value = raw  # plain text that YAML does not like (a: b), taken as the string it is
    return parts, _unshare(value, file=file, key=dotted)


def apply_override(data: dict, parts: list[str], value: Any, *, file: str) -> None:
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if i == 0 and part in TOP_LEVEL_KEYS and node.get(part) is None:
            node[part] = {}  # a known section the recipe left out (or null): start it
        if part not in node:
            choices = TOP_LEVEL_KEYS if i == 0 else list(node)
            raise RecipeError("override names a key that is not in the recipe", file=file, key=here,
                              value=part, choices=choices)
        node = node[part]
        if not isinstance(node, dict):
            raise RecipeError(f"override goes inside a value that is not a mapping; set the whole value with "
                              f"{here}=...", file=file, key=here, value=node)
    if len(parts) == 1 and parts[0] not in TOP_LEVEL_KEYS:
        raise RecipeError("unknown top-level key in override", file=file, key=parts[0], value=parts[0],
                          choices=TOP_LEVEL_KEYS)
    node[parts[-1]] = value


def _check_strings(node: Any, key: str, file: str) -> None:
    """PyYAML reads '2e-4' as text (YAML 1.1 wants a dot): catch it here, with the fix."""
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                raise RecipeError("keys must be text", file=file, key=f"{key}.{k}" if key else str(k), value=k)
            _check_strings(v, f"{key}.{k}" if key else k, file)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_strings(v, f"{key}[{i}]", file)
    elif isinstance(node, str) and len(node) < 100 and SCIENTIFIC.match(node.strip()):
        fixed = node.strip().lower()
        mant, _, exp = fixed.partition("e")
        signed = exp[:1] in ("+", "-")
        fixed = (mant if "." in mant else mant + ".0") + "e" + (exp if signed else "+" + exp)
        how = "with a dot" if signed else "with a dot and a signed exponent"
        raise RecipeError(f"number-like text: YAML reads it as a string; write {fixed} ({how}) for a number",
                          file=file, key=key, value=node)


RECIPE_SUFFIXES = (".yaml", ".yml")


def bundled_recipes_dir() -> Path | None:
    """The folder of recipes that ship with i2i, or None where there is none on disk.

    An installed wheel has them as the package data of ``i2i.recipes`` (pyproject.toml maps that package onto the
    repository's recipes/ folder, and an editable install made since maps it the same way). A source checkout or
    an older editable install has only the recipes/ folder beside the i2i package.
    """
    from importlib.resources import files
    try:
        root = files("i2i.recipes")
    except ModuleNotFoundError:
        root = None
    candidates = [root] if isinstance(root, Path) else []  # a zipped install has no folder: base: needs one
    candidates.append(Path(__file__).resolve().parents[2] / "recipes")
    return next((c for c in candidates if (c / "pix2pix.yaml").is_file()), None)


def bundled_recipes() -> dict[str, Path]:
    """{'cyclegan': .../cyclegan.yaml, 'demo/pix2pix': .../demo/pix2pix.yaml, ...}: name -> file, sorted."""
    root = bundled_recipes_dir()
    if root is None:
        return {}
    paths = sorted(p for suffix in RECIPE_SUFFIXES for p in root.rglob(f"*{suffix}"))
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in paths}


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # not allowed to look: taken as given, and reading it reports the problem
        return True


def _bundled_name(name: str, where: Path) -> Path | None:
    """The bundled recipe that ``name`` means: a name without .yaml (``cyclegan``, ``demo/pix2pix``) where the
    path it would otherwise be, ``where``, does not exist; else None."""
    path = Path(name)
    if path.suffix.lower() in RECIPE_SUFFIXES or path.is_absolute() or _exists(where):
        return None
    found = bundled_recipes().get(path.as_posix())
    if found is not None:
        logging.getLogger(__name__).info("%s: the bundled recipe %s", name, found)
    return found


def find_recipe(name: str | os.PathLike) -> Path:
    """The file a recipe argument names: an existing path as given, else a bundled recipe's name (``cyclegan``,
    ``demo/pix2pix``: no .yaml), so a regular install trains its recipes from any folder."""
    path = Path(name)
    found = _bundled_name(str(name), path)
    if found is not None:
        return found
    if path.suffix.lower() in RECIPE_SUFFIXES or path.is_absolute() or _exists(path):
        return path
    bundled = bundled_recipes()
    raise RecipeError("no such recipe file, nor a bundled recipe of that name (`i2i recipes` lists them; a file "
                      "name ends in .yaml)", value=str(name), choices=bundled or None)


def default_name(path: Path) -> str:
    """recipes/demo/pix2pix.yaml -> 'demo_pix2pix'; recipes/cyclegan.yaml -> 'cyclegan'."""
    parts = list(path.with_suffix("").parts)
    parts = parts[len(parts) - parts[::-1].index("recipes"):] if "recipes" in parts else parts[-1:]
    return "_".join(parts)


def load_recipe(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Recipe:
    """Read a recipe file (or a bundled recipe by name, see ``find_recipe``), merge its ``base:`` chain, apply
    dotted overrides and check the structure."""
    path = find_recipe(path)
    file = str(path)
    data = _resolve(path)
    for text in overrides:
        parts, value = parse_override(text, file=file)
        apply_override(data, parts, value, file=file)
    _check_strings(data, "", file)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise RecipeError("unknown top-level key", file=file, key=key, value=key, choices=TOP_LEVEL_KEYS)
    for section in REQUIRED_SECTIONS:
        if section not in data:
            raise RecipeError(f"missing section '{section}:'", file=file, key=section)
        if data[section] is None:
            raise RecipeError(f"section '{section}:' is empty; it must be a mapping", file=file, key=section)
    for section in ("data", "model", "nets", "losses", "optim", "train", "schedule", "eval", "translate"):
        if section in data and data[section] is not None and not isinstance(data[section], dict):
            raise RecipeError("this section must be a mapping", file=file, key=section, value=data[section])
    if isinstance(data.get("train"), dict) and data["train"].get("mixed_precision") is False:
        data["train"]["mixed_precision"] = "no"  # YAML 1.1 reads a bare `no` as false
    data.setdefault("name", default_name(path))
    data.setdefault("seed", 0)
    seed = data["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RecipeError("seed must be an integer", file=file, key="seed", value=seed)
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise RecipeError(f"seed must be between {SEED_RANGE[0]} and {SEED_RANGE[1]}", file=file, key="seed",
                          value=seed)
    name = data["name"]
    if (not isinstance(name, str) or not re.fullmatch(r"[\w.\-]+", name) or set(name) == {"."}
            or len(name) > MAX_NAME):
        raise RecipeError(f"name must be a plain word of at most {MAX_NAME} characters (letters, digits, _ . -; "
                          "not only dots): it names the run folder", file=file, key="name", value=name)
    return Recipe.of(data, file)


def recipe_from_text(text: str, source: str) -> Recipe:
    """A resolved recipe stored in a run or export folder (no base:, no overrides)."""
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"stored recipe is not valid YAML{_yaml_problem(exc)}", file=source) from None
    except RecursionError:
        raise RecipeError("stored recipe is nested too deeply", file=source) from None
    if not isinstance(data, dict):
        raise RecipeError("stored recipe is not a mapping", file=source)
    data = _unshare(data, file=source)
    return Recipe.of(data, source)
