"""Recipe arguments against constructor signatures: names, simple types and sane ranges (``check_arguments``),
then a trial construction on the meta device that names the argument at fault (``dry_build``)."""
from __future__ import annotations

import contextlib
import inspect
import math
import types
import typing
import warnings
from typing import Any, Literal, Union

from .errors import RecipeError, short_repr

INT_LIMIT = 2**31 - 1         # no count, size or step number in a recipe is larger (10**12 is a typo)
MAX_PARAMETERS = 2**31        # parameters of one net: 8 GiB of float32 weights, 4x that while training with Adam
MAX_MODULES = 20_000          # submodules of one net (a 9-block ResNet generator has about 70)


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
