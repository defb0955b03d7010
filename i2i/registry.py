"""One small registry class for nets, losses, models and data sets, with user plug-ins."""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

from .arguments import check_arguments
from .errors import I2IError, RecipeError

_ENTRY_POINTS_LOADED = False
_CWD_ENTRY: str | None = None  # the current folder, as _add_cwd_to_path put it on sys.path


class Registry:
    """Maps a ``type:`` name to a class; ``pkg.mod:Class`` dotted paths name user classes directly."""

    def __init__(self, kind: str, *, base: str | None = None, needs: tuple[str, ...] = ()):
        """``base`` ('package.module:Class') and ``needs`` (class attributes) are what a class named by a dotted
        path must have to be used as this kind of component."""
        self.kind = kind
        self.base, self.needs = base, needs
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
            obj = import_dotted(name, key=key, file=file)
            if not inspect.isclass(obj):
                raise RecipeError(f"a dotted {self.kind} type must name a class, and this is a "
                                  f"{type(obj).__name__}", file=file, key=key, value=name)
            base = import_dotted(self.base) if self.base else object
            missing = [a for a in self.needs if not hasattr(obj, a)]
            if not issubclass(obj, base) or missing:
                what = (f"a subclass of {self.base.replace(':', '.')}" if self.base
                        else f"a class with {', '.join(self.needs)}")
                raise RecipeError(f"a {self.kind} type must be {what}", file=file, key=key, value=name)
            return obj
        load_entry_point_plugins()
        if name not in self._classes:
            raise RecipeError(f"unknown {self.kind} type", file=file, key=key, value=name,
                              choices=self.names())
        return self._classes[name]

    def check(self, cfg: Any, *, key: str, file: str | None = None, provided: tuple[str, ...] = (),
              also_valid: tuple[str, ...] = ()) -> type:
        """Validate ``cfg`` (a mapping with ``type``) against the constructor without building."""
        if not isinstance(cfg, dict):
            raise RecipeError(f"expected a mapping with 'type:' for this {self.kind}", file=file, key=key,
                              value=cfg)
        if "type" not in cfg:
            raise RecipeError(f"missing 'type:' for this {self.kind}", file=file, key=key,
                              choices=self.names())
        cls = self.get(cfg["type"], key=f"{key}.type", file=file)
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        check_arguments(cls, kwargs, key=key, file=file, provided=provided, also_valid=also_valid)
        if hasattr(cls, "check_config"):  # a component's own cross-argument checks
            cls.check_config(kwargs, key=key, file=file)
        return cls

    def build(self, cfg: dict, *, key: str, file: str | None = None, **extra: Any) -> Any:
        cls = self.check(cfg, key=key, file=file, provided=tuple(extra))
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        return cls(**kwargs, **extra)


def _error_location(exc: BaseException) -> str:
    """' (plugin.py, line 3)': where user code raised ``exc``."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename}, line {exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    return f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""


def _add_cwd_to_path() -> None:
    """Put the current folder on sys.path, after what is installed, unless it is there already.

    `python -m` and `python script.py` do this themselves, a console script (`i2i ...`) does not: without it a
    recipe's `plugins: [my_lab]` would not find the my_lab.py beside the user. Appended, so a file in the
    current folder that shares a name with an installed module does not shadow it. A call from another folder
    moves the entry (a process that changes folders, such as the tests).
    """
    global _CWD_ENTRY
    try:
        cwd = os.getcwd()
    except OSError:  # the current folder was deleted
        return
    if _CWD_ENTRY is not None and cwd != _CWD_ENTRY and _CWD_ENTRY in sys.path:
        sys.path.remove(_CWD_ENTRY)
        _CWD_ENTRY = None
    here = os.path.realpath(cwd)
    if not any(os.path.realpath(entry or os.curdir) == here for entry in sys.path if isinstance(entry, str)):
        sys.path.append(cwd)
        _CWD_ENTRY = cwd


def _import_user_module(name: str, *, what: str, key: str, file: str | None, value: Any) -> types.ModuleType:
    """Import a module a recipe names (from the current folder too); any failure becomes a RecipeError naming the
    key and where it failed."""
    if not all(part.isidentifier() for part in name.split(".")):
        raise RecipeError(f"{what}: not a module name such as my_lab.nets", file=file, key=key, value=value)
    _add_cwd_to_path()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise RecipeError(f"cannot import {what}: no module named '{exc.name}' (not installed, not in the "
                              "current folder, and not on PYTHONPATH?)", file=file, key=key, value=value) from exc
        raise RecipeError(f"cannot import {what}: it needs '{exc.name}', which is not installed"
                          f"{_error_location(exc)}", file=file, key=key, value=value) from exc
    except Exception as exc:  # the module is user code: report its failure where it happened
        raise RecipeError(f"cannot import {what}: importing it raised {type(exc).__name__}: "
                          f"{(str(exc).splitlines() or [''])[0]}{_error_location(exc)} (run with -v for the "
                          "traceback)", file=file, key=key, value=value) from exc


def import_dotted(path: str, *, key: str = "type", file: str | None = None) -> Any:
    """Import ``pkg.mod:Name``; a recipe that names one runs that module's code (a recipe is code)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not all(part.isidentifier() for part in attr.split(".")):
        raise RecipeError("a dotted type is 'package.module:ClassName'", file=file, key=key, value=path)
    module = _import_user_module(module_name, what=f"module '{module_name}'", key=key, file=file, value=path)
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
        _import_user_module(name, what="plugin module", key=f"plugins[{i}]", file=file, value=name)


def load_entry_point_plugins() -> None:
    """Import every module declared in the ``i2i.plugins`` entry-point group, once."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points
    for ep in entry_points(group="i2i.plugins"):
        try:
            ep.load()
        except Exception as exc:  # an installed package's plug-in: name it, not a traceback
            raise I2IError(f"the installed i2i plug-in '{ep.name}' ({ep.value}) failed to load: "
                           f"{type(exc).__name__}: {exc}{_error_location(exc)}; uninstall or fix that "
                           "package") from exc


def config_value(cls: Any, cfg: dict, name: str) -> Any:
    """The value a constructor would see for ``name``: from the recipe mapping, else its default."""
    if name in cfg:
        return cfg[name]
    target = cls.__init__ if inspect.isclass(cls) else cls
    param = inspect.signature(target).parameters.get(name)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


class SizeRules:
    """Constant input-size rules for a net: a subclass sets ``SIZE_MULTIPLE`` (H and W divisible by it) and
    ``MIN_SIZE`` (the smallest side); nets whose rules depend on their arguments define ``size_multiple`` and
    ``min_size`` themselves. Read by ``net_size_rules``."""

    SIZE_MULTIPLE = 1
    MIN_SIZE = 1

    @classmethod
    def size_multiple(cls, **kwargs: Any) -> int:
        return cls.SIZE_MULTIPLE

    @classmethod
    def min_size(cls, **kwargs: Any) -> int:
        return cls.MIN_SIZE


def net_size_rules(cfg: dict) -> tuple[int, int]:
    """(size multiple, smallest side) a registered net's recipe entry accepts, from its class's ``size_multiple``
    and ``min_size`` (1 and 1 for a net that declares neither); read without building the net."""
    cls = NETS.get(cfg["type"])
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    multiple = cls.size_multiple(**kwargs) if hasattr(cls, "size_multiple") else 1
    minimum = cls.min_size(**kwargs) if hasattr(cls, "min_size") else 1
    return multiple, minimum


NETS = Registry("net", base="torch.nn:Module")
LOSSES = Registry("loss", base="torch.nn:Module")
MODELS = Registry("model", base="i2i.models.base:GANModel")
DATASETS = Registry("dataset", needs=("channels_from_config",))
