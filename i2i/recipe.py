"""YAML recipe -> plain dict: ``base:`` inheritance (deep merge), dotted overrides, early checks."""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import RecipeError

TOP_LEVEL_KEYS = ("name", "seed", "plugins", "data", "model", "nets", "losses", "optim", "schedule", "ema",
                  "train", "eval", "translate")
SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class Recipe(dict):
    """A resolved recipe: a plain nested dict plus the file it came from (for error messages)."""

    source: str = "<recipe>"

    @classmethod
    def of(cls, data: dict, source: str) -> "Recipe":
        r = cls(data)
        r.source = source
        return r

    def to_yaml(self) -> str:
        return yaml.safe_dump(dict(self), sort_keys=False, default_flow_style=None, width=110)


def _read_yaml(path: Path, *, chain: tuple[Path, ...]) -> dict:
    if not path.is_file():
        hint = f" (included by base: in {chain[-1]})" if chain else ""
        raise RecipeError(f"recipe file not found{hint}", file=str(path))
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"not valid YAML{where}: {problem}", file=str(path)) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise RecipeError(f"cannot read recipe: {exc}", file=str(path)) from None
    if data is None:
        data = {}
    data = _unshare(data)
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a mapping of sections (data:, model:, nets: ...)", file=str(path),
                          value=type(data).__name__)
    return data


def _unshare(node: Any) -> Any:
    """YAML anchors (g_ba: *gen) load as one shared object; an override of one must not change the other."""
    if isinstance(node, dict):
        return {k: _unshare(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unshare(v) for v in node]
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
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise RecipeError(f"cyclic base: chain {cycle}", file=str(chain[0]), key="base")
    data = _read_yaml(path, chain=chain)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise RecipeError("base must be a recipe file path", file=str(path), key="base", value=base)
    return deep_merge(_resolve(path.parent / base, (*chain, path)), data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.max_steps=500' -> (['train', 'max_steps'], 500); the value is read as YAML."""
    if "=" not in text:
        raise RecipeError("an override is KEY.PATH=VALUE, e.g. train.max_steps=500", key=text)
    key, _, raw = text.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise RecipeError("an override key is a dotted path such as data.root", key=key)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_override(data: dict, parts: list[str], value: Any, *, file: str) -> None:
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if i == 0 and part in TOP_LEVEL_KEYS and node.get(part) is None:
            node[part] = {}  # a known section the recipe left out (or null): start it
        if not isinstance(node, dict) or part not in node:
            choices = (TOP_LEVEL_KEYS if i == 0 else list(node)) if isinstance(node, dict) else None
            raise RecipeError("override names a key that is not in the recipe", file=file, key=here,
                              value=part, choices=choices)
        node = node[part]
    if not isinstance(node, dict):
        raise RecipeError("override goes inside a value that is not a mapping", file=file,
                          key=".".join(parts[:-1]), value=node)
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
    elif isinstance(node, str) and SCIENTIFIC.match(node.strip()):
        fixed = node.strip().lower()
        mant, _, exp = fixed.partition("e")
        fixed = (mant if "." in mant else mant + ".0") + "e" + exp
        raise RecipeError(f"number-like text: YAML reads it as a string; write {fixed} (with a dot) for a number",
                          file=file, key=key, value=node)


def default_name(path: Path) -> str:
    """recipes/demo/pix2pix.yaml -> 'demo_pix2pix'; recipes/cyclegan.yaml -> 'cyclegan'."""
    parts = list(path.with_suffix("").parts)
    if "recipes" in parts:
        parts = parts[len(parts) - parts[::-1].index("recipes"):]
    else:
        parts = parts[-1:]
    return "_".join(parts)


def load_recipe(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Recipe:
    """Read a recipe file, merge its ``base:`` chain, apply dotted overrides and check the structure."""
    path = Path(path)
    file = str(path)
    data = _resolve(path)
    for text in overrides:
        parts, value = parse_override(text)
        apply_override(data, parts, value, file=file)
    _check_strings(data, "", file)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise RecipeError("unknown top-level key", file=file, key=key, value=key, choices=TOP_LEVEL_KEYS)
    for section in ("data", "model", "nets", "losses", "optim", "train"):
        if section not in data:
            raise RecipeError(f"missing section '{section}:'", file=file, key=section)
    for section in ("data", "model", "nets", "losses", "optim", "train", "schedule", "eval", "translate"):
        if section in data and data[section] is not None and not isinstance(data[section], dict):
            raise RecipeError("this section must be a mapping", file=file, key=section, value=data[section])
    data.setdefault("name", default_name(path))
    data.setdefault("seed", 0)
    if not isinstance(data["seed"], int) or isinstance(data["seed"], bool):
        raise RecipeError("seed must be an integer", file=file, key="seed", value=data["seed"])
    if not isinstance(data["name"], str) or not re.fullmatch(r"[\w.\-]+", data["name"]):
        raise RecipeError("name must be a plain word (letters, digits, _ . -)", file=file, key="name",
                          value=data["name"])
    return Recipe.of(data, file)


def recipe_from_text(text: str, source: str) -> Recipe:
    """A resolved recipe stored in a run or export folder (no base:, no overrides)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise RecipeError("stored recipe is not a mapping", file=source)
    data = _unshare(data)
    return Recipe.of(data, source)
