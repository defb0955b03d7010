"""One small registry class for nets, losses, models and data sets, with user plug-ins."""
from __future__ import annotations

import importlib
import inspect
import types
import typing
from typing import Any, Callable, Literal, Union

from .errors import RecipeError

_ENTRY_POINTS_LOADED = False


class Registry:
    """Maps a ``type:`` name to a class; ``pkg.mod:Class`` dotted paths name user classes directly."""

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def add(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} '{name}' is already registered by {self._classes[name]}")
            self._classes[name] = cls
            cls.registered_name = name
            return cls
        return add

    def names(self) -> list[str]:
        load_entry_point_plugins()
        return sorted(self._classes)

    def items(self) -> list[tuple[str, type]]:
        return [(n, self._classes[n]) for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: Any, *, key: str = "type", file: str | None = None) -> type:
        if not isinstance(name, str) or not name:
            raise RecipeError(f"{self.kind} type must be a name", file=file, key=key, value=name,
                              choices=self.names())
        if ":" in name:
            return import_dotted(name, key=key, file=file)
        load_entry_point_plugins()
        if name not in self._classes:
            raise RecipeError(f"unknown {self.kind} type", file=file, key=key, value=name,
                              choices=self.names())
        return self._classes[name]

    def check(self, cfg: Any, *, key: str, file: str | None = None, provided: tuple[str, ...] = ()) -> type:
        """Validate ``cfg`` (a mapping with ``type``) against the constructor without building."""
        if not isinstance(cfg, dict):
            raise RecipeError(f"expected a mapping with 'type:' for this {self.kind}", file=file, key=key,
                              value=cfg)
        if "type" not in cfg:
            raise RecipeError(f"missing 'type:' for this {self.kind}", file=file, key=key,
                              choices=self.names())
        cls = self.get(cfg["type"], key=f"{key}.type", file=file)
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        check_arguments(cls, kwargs, key=key, file=file, provided=provided)
        if hasattr(cls, "check_config"):  # a component's own cross-argument checks
            cls.check_config(kwargs, key=key, file=file)
        return cls

    def build(self, cfg: dict, *, key: str, file: str | None = None, **extra: Any) -> Any:
        cls = self.check(cfg, key=key, file=file, provided=tuple(extra))
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        return cls(**kwargs, **extra)


def import_dotted(path: str, *, key: str = "type", file: str | None = None) -> Any:
    """Import ``pkg.mod:Name``; a recipe that names one runs that module's code (a recipe is code)."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RecipeError(f"cannot import module '{module_name}': {exc}", file=file, key=key, value=path) from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise RecipeError(f"module '{module_name}' has no '{attr}'", file=file, key=key, value=path,
                              choices=names)
        obj = getattr(obj, part)
    return obj


def load_plugins(modules: Any, *, file: str | None = None) -> None:
    """Import the modules named by a recipe's ``plugins:`` list so they can register components."""
    if modules is None:
        return
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise RecipeError("plugins must be a list of module names", file=file, key="plugins", value=modules)
    for i, name in enumerate(modules):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise RecipeError(f"cannot import plugin module: {exc}", file=file, key=f"plugins[{i}]",
                              value=name) from exc


def load_entry_point_plugins() -> None:
    """Import every module declared in the ``i2i.plugins`` entry-point group, once."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points
    for ep in entry_points(group="i2i.plugins"):
        ep.load()


def config_value(cls: Any, cfg: dict, name: str) -> Any:
    """The value a constructor would see for ``name``: from the recipe mapping, else its default."""
    if name in cfg:
        return cfg[name]
    target = cls.__init__ if inspect.isclass(cls) else cls
    param = inspect.signature(target).parameters.get(name)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


# ---------------------------------------------------------------- argument checks
def _type_ok(value: Any, ann: Any) -> tuple[bool, list | None]:
    """Is ``value`` acceptable for annotation ``ann``? Returns (ok, choices for a Literal)."""
    if ann is inspect.Parameter.empty or ann is Any:
        return True, None
    origin = typing.get_origin(ann)
    if origin is Literal:
        choices = list(typing.get_args(ann))
        return value in choices, choices
    if origin in (Union, types.UnionType):
        found_choices: list = []
        for arg in typing.get_args(ann):
            ok, choices = _type_ok(value, arg)
            if ok:
                return True, None
            found_choices += choices or []
        return False, found_choices or None
    if ann is type(None):
        return value is None, None
    if ann is bool:
        return isinstance(value, bool), [True, False]
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool), None
    if ann is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), None
    if ann is str:
        return isinstance(value, str), None
    if origin in (list, tuple, typing.Sequence) or ann in (list, tuple):
        return isinstance(value, (list, tuple)), None
    if origin is dict or ann is dict:
        return isinstance(value, dict), None
    return True, None


def _describe(ann: Any) -> str:
    if typing.get_origin(ann) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(ann))
    return getattr(ann, "__name__", str(ann)).replace("typing.", "")


def check_arguments(cls: Any, kwargs: dict, *, key: str, file: str | None = None,
                    provided: tuple[str, ...] = ()) -> None:
    """Check names and simple types of ``kwargs`` against ``cls``'s constructor signature."""
    target = cls.__init__ if inspect.isclass(cls) else cls
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    params = {n: p for n, p in sig.parameters.items() if n != "self"}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    valid = [n for n in named if n not in provided]
    for name, value in kwargs.items():
        if name not in named or name in provided:
            if accepts_any and name not in provided:
                continue
            raise RecipeError(f"unknown argument for {getattr(cls, '__name__', cls)}", file=file,
                              key=f"{key}.{name}", value=name, choices=valid)
        ann = hints.get(name, named[name].annotation)
        ok, choices = _type_ok(value, ann)
        if not ok:
            msg = f"wrong value for {getattr(cls, '__name__', cls)} argument (expected {_describe(ann)})"
            raise RecipeError(msg, file=file, key=f"{key}.{name}", value=value,
                              choices=[str(c) for c in choices] if choices else None)
    for name, p in named.items():
        if p.default is inspect.Parameter.empty and name not in kwargs and name not in provided:
            raise RecipeError(f"missing required argument '{name}' for {getattr(cls, '__name__', cls)}",
                              file=file, key=f"{key}.{name}")


NETS = Registry("net")
LOSSES = Registry("loss")
MODELS = Registry("model")
DATASETS = Registry("dataset")
