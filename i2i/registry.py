"""One small registry class for nets, losses, models and data sets, with user plug-ins."""
from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import traceback
import types
import typing
import warnings
from collections.abc import Callable
from typing import Any, Literal, Union

from .errors import I2IError, RecipeError, short_repr

_ENTRY_POINTS_LOADED = False
INT_LIMIT = 2**31 - 1         # no count, size or step number in a recipe is larger (10**12 is a typo)
MAX_PARAMETERS = 2**31        # parameters of one net: 8 GiB of float32 weights, 4x that while training with Adam
MAX_MODULES = 20_000          # submodules of one net (a 9-block ResNet generator has about 70)


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
                what = f"a subclass of {self.base.replace(':', '.')}" if self.base else f"a class with {', '.join(self.needs)}"
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


def _import_user_module(name: str, *, what: str, key: str, file: str | None, value: Any) -> types.ModuleType:
    """Import a module a recipe names; any failure becomes a RecipeError naming the key and where it failed."""
    if not all(part.isidentifier() for part in name.split(".")):
        raise RecipeError(f"{what}: not a module name such as my_lab.nets", file=file, key=key, value=value)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise RecipeError(f"cannot import {what}: no module named '{exc.name}' (not installed, or not on "
                              "PYTHONPATH?)", file=file, key=key, value=value) from exc
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


def net_size_rules(cfg: dict) -> tuple[int, int]:
    """(size multiple, smallest side) a registered net's recipe entry accepts, from its class's ``size_multiple``
    and ``min_size`` (1 and 1 for a net that declares neither); read without building the net."""
    cls = NETS.get(cfg["type"])
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    multiple = cls.size_multiple(**kwargs) if hasattr(cls, "size_multiple") else 1
    minimum = cls.min_size(**kwargs) if hasattr(cls, "min_size") else 1
    return multiple, minimum


# ---------------------------------------------------------------- argument checks
def _type_ok(value: Any, ann: Any) -> tuple[bool, list | None]:
    """Is ``value`` acceptable for annotation ``ann``? Returns (ok, choices for a Literal)."""
    if ann is inspect.Parameter.empty or ann is Any:
        return True, None
    origin = typing.get_origin(ann)
    if origin is Literal:
        choices = list(typing.get_args(ann))
        return any(value == c and type(value) is type(c) for c in choices), choices
    if origin in (Union, types.UnionType):
        found_choices: list = []
        args = typing.get_args(ann)
        if any(_yaml_native(a) for a in args):  # float | Tensor: a recipe value can only ever be the float
            args = tuple(a for a in args if _yaml_native(a))
        for arg in args:
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
    args = typing.get_args(ann)
    if origin in (list, tuple, typing.Sequence) or ann in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, None
        if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[float, float]: that many items
            return len(value) == len(args) and all(_type_ok(v, a)[0] for v, a in zip(value, args)), None
        item = args[0] if args else Any
        return all(_type_ok(v, item)[0] for v in value), None
    if origin is dict or ann is dict:
        if not isinstance(value, dict):
            return False, None
        if len(args) == 2:
            return all(_type_ok(k, args[0])[0] and _type_ok(v, args[1])[0] for k, v in value.items()), None
        return True, None
    return True, None


def _yaml_native(ann: Any) -> bool:
    """Can a YAML value be of this annotation (int, str, list[...], Literal ...), rather than a class such as
    Tensor that a constructor makes from something else?"""
    if ann in (int, float, str, bool, list, tuple, dict, type(None)):
        return True
    origin = typing.get_origin(ann)
    if origin in (Union, types.UnionType):
        return any(_yaml_native(a) for a in typing.get_args(ann))
    return origin in (Literal, list, tuple, dict)


def _accepts_int(ann: Any) -> bool:
    """Does annotation ``ann`` take integers as integers (int, int | None), not as floats?"""
    if ann is int:
        return True
    if typing.get_origin(ann) in (Union, types.UnionType):
        return any(_accepts_int(a) for a in typing.get_args(ann))
    return False


def _range_problem(cls: Any, name: str, value: Any, ann: Any) -> str | None:
    """Numbers no recipe means: NaN or infinity anywhere, negative or absurdly large counts and sizes."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and _accepts_int(ann):
        if value > INT_LIMIT:
            return f"is absurdly large (at most {INT_LIMIT})"
        if value < 0 and name not in getattr(cls, "signed_arguments", ()):
            return "must be >= 0 (a count, a size or a step number)"
    return None


def _describe(ann: Any) -> str:
    if typing.get_origin(ann) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(ann))
    if typing.get_origin(ann) in (Union, types.UnionType) and any(_yaml_native(a) for a in typing.get_args(ann)):
        return " | ".join(_describe(a) for a in typing.get_args(ann) if _yaml_native(a))
    if inspect.isclass(ann) and not typing.get_args(ann):
        return ann.__name__
    return str(ann).replace("typing.", "")


def check_arguments(cls: Any, kwargs: dict, *, key: str, file: str | None = None,
                    provided: tuple[str, ...] = (), also_valid: tuple[str, ...] = ()) -> None:
    """Check names, simple types and sane number ranges of ``kwargs`` against ``cls``'s constructor signature.

    ``also_valid``: names that the same recipe mapping takes for something else (data:'s loader keys), listed
    among the valid choices when a name is unknown.
    """
    if not isinstance(kwargs, dict):
        raise RecipeError("expected a mapping of arguments", file=file, key=key, value=kwargs)
    target = cls.__init__ if inspect.isclass(cls) else cls
    label = getattr(cls, "__name__", short_repr(cls))
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        raise RecipeError(f"cannot read the constructor arguments of {label}", file=file, key=key) from None
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001  annotations naming what cannot be imported: check names only
        hints = {}
    params = {n: p for n, p in sig.parameters.items() if n != "self"}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    valid = [n for n in named if n not in provided]
    for name, value in kwargs.items():
        if name not in named or name in provided:
            if accepts_any and name not in provided:
                if isinstance(value, float) and not math.isfinite(value):
                    raise RecipeError("must be a finite number", file=file, key=f"{key}.{name}", value=value)
                continue
            if not valid and not also_valid:
                raise RecipeError(f"unknown argument for {label}: it takes no arguments here", file=file,
                                  key=f"{key}.{name}", value=name)
            raise RecipeError(f"unknown argument for {label}", file=file, key=f"{key}.{name}", value=name,
                              choices=valid + list(also_valid))
        ann = hints.get(name, named[name].annotation)
        ok, choices = _type_ok(value, ann)
        if not ok:
            msg = f"wrong value for {label} argument (expected {_describe(ann)})"
            raise RecipeError(msg, file=file, key=f"{key}.{name}", value=value,
                              choices=[str(c) for c in choices] if choices else None)
        problem = _range_problem(cls, name, value, ann)
        if problem:
            raise RecipeError(f"{label} argument {problem}", file=file, key=f"{key}.{name}", value=value)
    for name, p in named.items():
        if p.default is inspect.Parameter.empty and name not in kwargs and name not in provided:
            raise RecipeError(f"missing required argument '{name}' for {label}", file=file, key=f"{key}.{name}")


# ---------------------------------------------------------------- trial construction
class _TooLarge(Exception):
    pass


#: what a constructor raises when its arguments are wrong (a NameError or AttributeError is a bug: not caught)
ARGUMENT_ERRORS = (ValueError, TypeError, RuntimeError, AssertionError, IndexError, KeyError, OverflowError,
                   ZeroDivisionError)


def _try_build(cls: Any, kwargs: dict, extra: dict, meta: bool) -> str | None:
    """Why ``cls(**kwargs, **extra)`` cannot be built, or None. Modules are built on the meta device: no memory,
    no weights, and counting stops a net that would be absurdly large before it is finished."""
    import torch
    from torch.nn.modules import module as torch_module
    counts = {"parameters": 0, "modules": 0}

    def on_parameter(module: Any, name: str, param: Any) -> None:
        counts["parameters"] += param.numel() if param is not None else 0
        if counts["parameters"] > MAX_PARAMETERS:
            raise _TooLarge(f"it would have more than {MAX_PARAMETERS:,} parameters "
                            f"({MAX_PARAMETERS * 4 / 2**30:.0f} GiB of float32 weights)")

    def on_module(module: Any, name: str, submodule: Any) -> None:
        counts["modules"] += 1
        if counts["modules"] > MAX_MODULES:
            raise _TooLarge(f"it would have more than {MAX_MODULES:,} layers")

    handles = [torch_module.register_module_parameter_registration_hook(on_parameter),
               torch_module.register_module_module_registration_hook(on_module)]
    try:
        with warnings.catch_warnings(), (torch.device("meta") if meta else contextlib.nullcontext()):
            warnings.simplefilter("ignore")
            built = cls(**kwargs, **extra)
    except _TooLarge as exc:
        return str(exc)
    except NotImplementedError:
        return None  # an operation the meta device lacks: no verdict
    except ARGUMENT_ERRORS as exc:
        text = (str(exc).splitlines() or [""])[0]
        if meta and "meta" in text.lower():
            return None  # the constructor needs real tensors: no verdict
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    finally:
        for handle in handles:
            handle.remove()
    if isinstance(built, torch.nn.Module):
        for pname, param in built.named_parameters():
            if param.numel() == 0:
                return f"its parameter {pname} would be empty (shape {tuple(param.shape)}): a count of 0?"
    return None


def dry_build(cls: Any, cfg: dict, *, key: str, file: str | None = None, meta: bool = True, **extra: Any) -> None:
    """Build ``cls`` from a checked ``cfg`` as a trial (nets on the meta device) to catch what only its constructor
    checks, and name the argument at fault: the first one whose removal (back to its default) lets it build.

    A class sets ``dry_build = False`` when constructing it reads files or is slow.
    """
    if not getattr(cls, "dry_build", True):
        return
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    problem = _try_build(cls, kwargs, extra, meta)
    if problem is None:
        return
    target = cls.__init__ if inspect.isclass(cls) else cls
    params = inspect.signature(target).parameters
    def suspicion(item: tuple[str, Any]) -> float:  # the largest numbers are the likeliest culprits: try them first
        value = item[1]
        return -abs(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0
    for name, value in sorted(kwargs.items(), key=suspicion):
        has_default = name in params and params[name].default is not inspect.Parameter.empty
        if has_default and _try_build(cls, {k: v for k, v in kwargs.items() if k != name}, extra, meta) is None:
            raise RecipeError(f"{cls.__name__} cannot be built with this value: {problem}", file=file,
                              key=f"{key}.{name}", value=value)
    raise RecipeError(f"{cls.__name__} cannot be built from these arguments: {problem}", file=file, key=key)


NETS = Registry("net", base="torch.nn:Module")
LOSSES = Registry("loss", base="torch.nn:Module")
MODELS = Registry("model", base="i2i.models.base:GANModel")
DATASETS = Registry("dataset", needs=("channels_from_config",))
