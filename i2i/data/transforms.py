"""Albumentations pipelines applied identically to every image of a sample (A and B of a pair)."""
from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

import albumentations as A
import cv2
import numpy as np

from ..errors import RecipeError

# Base classes and 3-D transforms are not nameable; neither are those that break the contract that
# arrays stay float HWC in [0, 1] (the data set converts to [-1, 1] tensors itself) or need Python code.
_NOT_NAMEABLE = {"BasicTransform", "DualTransform", "ImageOnlyTransform", "NoOp", "Transform3D",
                 "ToTensorV2", "Normalize", "ToFloat", "FromFloat", "Lambda"}


@lru_cache(maxsize=1)
def transform_names() -> tuple[str, ...]:
    """Names of the albumentations classes a ``data.transforms`` item may use as ``type``."""
    names = []
    for name, obj in vars(A).items():
        if (inspect.isclass(obj) and issubclass(obj, A.BasicTransform) and not inspect.isabstract(obj)
                and name not in _NOT_NAMEABLE and not name.endswith("3D")):
            names.append(name)
    return tuple(sorted(names))


def _from_spec(item: Any, key: str) -> A.BasicTransform:
    if not isinstance(item, dict) or "type" not in item:
        raise RecipeError("each transform is a mapping with 'type:' (an albumentations class) and its arguments",
                          key=key, value=item)
    name = item["type"]
    if name not in transform_names():
        raise RecipeError("unknown albumentations transform", key=key, value=name, choices=transform_names())
    cls = getattr(A, name)
    kwargs = {k: v for k, v in item.items() if k != "type"}
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        valid = [n for n in params if n != "self"]
        for arg in kwargs:
            # albumentations only warns about unknown arguments; a typo must not pass silently.
            if arg not in valid:
                raise RecipeError(f"unknown argument for {name}", key=f"{key}.{arg}", value=arg, choices=valid)
    try:
        return cls(**kwargs)
    except Exception as exc:  # pydantic ValidationError (a ValueError), TypeError ...
        raise RecipeError(f"invalid arguments for {name}: {exc}", key=key, value=kwargs) from exc


def build_transform(size: int, load_size: int | None, flip: bool, spec: list | None,
                    targets: tuple[str, ...]) -> A.Compose:
    """Default: resize to ``load_size`` and random-crop ``size`` (or resize to ``size``), then h-flip.

    ``spec`` (a list of ``{type: ClassName, **kwargs}``) replaces the default. ``targets`` names the arrays
    of one sample; every one after the first receives the same random parameters as the first.
    """
    if spec is not None:
        if not isinstance(spec, list):
            raise RecipeError("transforms must be a list of {type: ..., ...} mappings", key="data.transforms",
                              value=spec)
        steps = [_from_spec(item, f"data.transforms[{i}]") for i, item in enumerate(spec)]
    else:
        # Bicubic like pix2pix/CycleGAN when enlarging; area averaging when shrinking avoids aliasing.
        resize = dict(interpolation=cv2.INTER_CUBIC, area_for_downscale="image")
        if load_size is not None:
            steps = [A.Resize(load_size, load_size, **resize), A.RandomCrop(size, size)]
        else:
            steps = [A.Resize(size, size, **resize)]
        if flip:
            steps.append(A.HorizontalFlip(p=0.5))
    return A.Compose(steps, additional_targets=dict.fromkeys(targets[1:], "image"))


def apply_transform(transform: A.Compose, arrays: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Run ``transform`` on float32 HWC arrays with its random state set from ``seed`` (pure in seed)."""
    names = list(arrays)
    transform.set_random_seed(seed)
    out = transform(image=arrays[names[0]], **{n: arrays[n] for n in names[1:]})
    return {names[0]: out["image"], **{n: out[n] for n in names[1:]}}
