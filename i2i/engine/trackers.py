"""Experiment trackers by name (``train.trackers``), through Accelerate's tracker API: which of them are installed
here, their start-up options, the recipe as their run configuration, and the sample grids for those that take
images. ``log.jsonl`` and ``report.html`` are written whatever the trackers are."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RecipeError
from ..recipe.schema import TRACKERS

log = logging.getLogger("i2i")

#: trackers whose Accelerate class has ``log_images`` -> how it wants one HxWxC uint8 image and its keywords
IMAGE_CALLS = {
    "tensorboard": (lambda img: img[None], {"dataformats": "NHWC"}),
    "wandb": (lambda img: [img], {}),
    "swanlab": (lambda img: [img], {}),
    "clearml": (lambda img: img, {}),
    "aim": (lambda img: img, {}),
}
MAX_CONFIG_TEXT = 250  # MLflow's older limit on a parameter value's length


def installed(name: str) -> bool:
    """Whether Accelerate finds the tracker's package in this Python."""
    from accelerate.utils import imports
    check = getattr(imports, f"is_{name}_available", None)
    return bool(check()) if check is not None else False


def available(wanted: dict[str, dict], *, explicit: bool) -> dict[str, dict]:
    """The wanted trackers that are installed; each missing one is named with the command that installs it (the
    default TensorBoard, when nobody asked for it, quietly)."""
    out = {}
    for name, options in wanted.items():
        if installed(name):
            out[name] = options
        elif explicit and os.environ.get("RANK", "0") == "0":  # one message per run, not one per process
            log.warning("train.trackers: %s is not installed in this Python (pip install %s); training goes on "
                        "without it (log.jsonl and report.html are written anyway)", name, TRACKERS[name])
    return out


def init_kwargs(wanted: dict[str, dict], run_dir: Path) -> dict[str, dict]:
    """Each tracker's start-up options: the recipe's, over defaults that keep files in the run folder."""
    defaults = {"wandb": {"dir": str(run_dir)}}
    return {name: {**defaults.get(name, {}), **options} for name, options in wanted.items()}


def start_error(names: list[str], exc: Exception, file: str | None) -> RecipeError:
    """A tracker that would not start (its server, store or login): the error, naming train.trackers."""
    text = " ".join(str(exc).split())[:600] or type(exc).__name__
    return RecipeError(f"a tracker did not start: {type(exc).__name__}: {text}. Fix that tracker's own settings "
                       "(its environment variables, or options under train.trackers.<name>), or leave it out of "
                       "train.trackers", file=file, key="train.trackers", value=names)


def flat_config(recipe: dict, prefix: str = "") -> dict[str, Any]:
    """The recipe as flat ``section.key: value`` pairs of the kinds every tracker stores (numbers, text, bool)."""
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_config(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value if not isinstance(value, str) else value[:MAX_CONFIG_TEXT]
        else:  # None, lists, empty mappings
            out[name] = str(value)[:MAX_CONFIG_TEXT]
    return out


def log_grid(accelerator: Any, path: Path, step: int, key: str = "samples") -> list[str]:
    """The sample grid just written to ``path``, to every started tracker that takes images (MLflow: as an
    artifact). Returns the trackers it went to."""
    if not accelerator.trackers:
        return []
    from PIL import Image
    with Image.open(path) as im:
        img = np.asarray(im.convert("RGB"))
    sent = []
    for tracker in accelerator.trackers:
        name = getattr(tracker, "name", "")
        if name in IMAGE_CALLS:
            shape, kwargs = IMAGE_CALLS[name]
            tracker.log_images({key: shape(img)}, step=step, **kwargs)
            sent.append(name)
        elif name == "mlflow":
            import mlflow
            mlflow.log_artifact(str(path), artifact_path=key)
            sent.append(name)
    return sent
