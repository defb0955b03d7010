"""Hole masks for inpainting: the data option ``data.mask`` (any folder data set) and the masks `i2i inpaint` and the
inpainting scores use.

A mask is float32 (H, W) with 1 in the hole (the pixels to fill) and 0 where the pixel is known. Kinds:

- ``center``: the central square, ``size`` x the shorter side (0.5: Context Encoder's 64 px hole in 128 px);
- ``blocks``: ``count`` rectangles at random places, each side ``size`` (a fraction, or [min, max]) of the image's
  (one block of 0.5 is PyTorch-GAN's random square);
- ``strokes``: free-form brush strokes (as in Yu et al. 2019, arXiv:1806.03589): ``count`` polylines of
  ``vertices`` segments, ``width`` (a fraction of the shorter side) thick, with round joints;
- ``files``: mask images, white (>= 50%) = hole. ``folder: DIR`` matches them to the images by relative path
  without extension (``DIR/a/b.png`` for ``<images>/a/b.jpg``); without it they lie next to the images, named
  ``<name><suffix>.<ext>`` (``photo_mask.png`` for ``photo.jpg``), and are not images of the data set.

Generated masks are drawn from the sample's own generator after the transform (at the crop's size), so a sample and
its mask are a pure function of ``(index, sample_seed)``; mask files go through the same geometric transform as the
image and are thresholded at 0.5 afterwards.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DataError, RecipeError, did_you_mean
from .io import IMAGE_EXTENSIONS, adapt_channels, list_images, read_image, show_path, to_float

MASK_KINDS = ("center", "blocks", "strokes", "files")
_ARGS = {"center": ("size",), "blocks": ("count", "size"), "strokes": ("count", "vertices", "width"),
         "files": ("folder", "suffix")}
_DEFAULTS: dict[str, dict[str, Any]] = {"center": {"size": 0.5}, "blocks": {"count": [1, 3], "size": [0.15, 0.5]},
                                        "strokes": {"count": [1, 4], "vertices": [4, 10], "width": [0.04, 0.1]},
                                        "files": {"folder": None, "suffix": "_mask"}}


MAX_SHAPES = 256  # blocks, strokes or stroke vertices per mask: more only cost time (a typo like 1e12 would hang)


def _span(value: Any, key: str, *, integer: bool, low: float, high: float | None = None) -> tuple[Any, Any]:
    """A number or a [min, max] pair within [low, high], as (min, max)."""
    pair = list(value) if isinstance(value, (list, tuple)) else [value, value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in pair):
        raise RecipeError("must be a finite number", key=key, value=value)
    kind = int if integer else (int, float)
    what = "an integer" if integer else "a number"
    ok = len(pair) == 2 and all(isinstance(v, kind) and not isinstance(v, bool) for v in pair)
    if ok:
        ok = low <= pair[0] <= pair[1] and (high is None or pair[1] <= high)
    if not ok:
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise RecipeError(f"must be {what} or a [min, max] pair of them, {bounds}", key=key, value=value)
    return pair[0], pair[1]


class MaskSource:
    """One kind of mask with its settings (see the module docstring); ``generate`` draws one for an image size."""

    def __init__(self, type: str, key: str = "data.mask", **args: Any):
        if type not in MASK_KINDS:
            what = "unknown mask kind" if isinstance(type, str) else "must be a name of a mask kind"
            raise RecipeError(what + did_you_mean(type, MASK_KINDS), key=f"{key}.type", value=type, choices=MASK_KINDS)
        for name in args:
            if name not in _ARGS[type]:
                raise RecipeError(f"mask '{type}' takes no argument '{name}'{did_you_mean(name, _ARGS[type])}",
                                  key=f"{key}.{name}", value=args[name],
                                  choices=_ARGS[type])
        self.type, self.key = type, key
        self.args = {**_DEFAULTS[type], **args}
        a = self.args
        if type == "center":
            self.size = _span(a["size"], f"{key}.size", integer=False, low=0.0, high=1.0)[0]
        elif type == "blocks":
            self.count = _span(a["count"], f"{key}.count", integer=True, low=1, high=MAX_SHAPES)
            self.size = _span(a["size"], f"{key}.size", integer=False, low=0.0, high=1.0)
        elif type == "strokes":
            self.count = _span(a["count"], f"{key}.count", integer=True, low=1, high=MAX_SHAPES)
            self.vertices = _span(a["vertices"], f"{key}.vertices", integer=True, low=1, high=MAX_SHAPES)
            self.width = _span(a["width"], f"{key}.width", integer=False, low=0.0, high=1.0)
        else:
            if a["folder"] is not None and not isinstance(a["folder"], str):
                raise RecipeError("must be a folder of mask images or null (masks next to the images)",
                                  key=f"{key}.folder", value=a["folder"])
            if not isinstance(a["suffix"], str) or (a["folder"] is None and not a["suffix"]):
                raise RecipeError("must be a non-empty name ending, e.g. _mask (photo.jpg -> photo_mask.png)",
                                  key=f"{key}.suffix", value=a["suffix"])

    @classmethod
    def from_config(cls, cfg: Any, key: str = "data.mask") -> MaskSource | None:
        """``data.mask`` (a mapping with ``type:``, or null) checked and built; raises RecipeError."""
        if cfg is None:
            return None
        if isinstance(cfg, str):
            cfg = {"type": cfg}
        if not isinstance(cfg, dict) or "type" not in cfg:
            missing = "missing 'type:'; " if isinstance(cfg, dict) else ""
            raise RecipeError(f"{missing}mask must be a mapping such as {{type: center, size: 0.5}}, {{type: blocks}}, "
                              "{type: strokes} or {type: files, folder: DIR}, or null", key=key, value=cfg,
                              choices=MASK_KINDS)
        return cls(key=key, **cfg)

    @property
    def reads_files(self) -> bool:
        return self.type == "files"

    def config(self) -> dict[str, Any]:
        return {"type": self.type, **self.args}

    # ---------------------------------------------------------------- generated masks
    def generate(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """A (height, width) float32 mask, 1 in the hole, drawn from ``rng`` (not used by ``center``)."""
        if self.type == "center":
            return center_mask(height, width, self.size)
        if self.type == "blocks":
            return self._blocks(height, width, rng)
        if self.type == "strokes":
            return self._strokes(height, width, rng)
        raise ValueError("mask files are read, not generated")

    def _blocks(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        mask = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(self.count[0], self.count[1] + 1))):
            fh, fw = rng.uniform(*self.size, size=2) if self.size[0] < self.size[1] else (self.size[0],) * 2
            bh, bw = max(1, round(fh * h)), max(1, round(fw * w))
            y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
            mask[y:y + bh, x:x + bw] = 1
        return mask

    def _strokes(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        mask = np.zeros((h, w), np.uint8)
        side = min(h, w)
        for _ in range(int(rng.integers(self.count[0], self.count[1] + 1))):
            thick = max(1, round(rng.uniform(*self.width) * side))
            point = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            angle = rng.uniform(0, 2 * np.pi)
            for _ in range(int(rng.integers(self.vertices[0], self.vertices[1] + 1))):
                angle += rng.uniform(-np.pi / 3, np.pi / 3)  # a smooth turn per segment: strokes, not scribbles
                step = rng.uniform(0.1, 0.3) * side
                nxt = np.clip(point + step * np.array([np.cos(angle), np.sin(angle)]), 0, [w - 1, h - 1])
                a, b = tuple(int(v) for v in np.rint(point)), tuple(int(v) for v in np.rint(nxt))
                cv2.line(mask, a, b, 1, thick)
                cv2.circle(mask, b, thick // 2, 1, -1)
                point = nxt
        return mask.astype(np.float32)

    # ---------------------------------------------------------------- mask files
    def is_mask_file(self, path: Path) -> bool:
        """A mask lying next to the images (``<name><suffix>.<ext>``), not an image of the data set."""
        return self.type == "files" and self.args["folder"] is None and path.stem.endswith(self.args["suffix"])

    def pair(self, images: list[Path], folder: Path) -> list[Path]:
        """The mask file of each image (``images`` listed under ``folder``); DataError naming the images without one."""
        if self.args["folder"] is not None:
            return match_mask_files(images, folder, Path(self.args["folder"]), what=f"{self.key}.folder")
        suffix = self.args["suffix"]
        by_stem: dict[Path, list[Path]] = {}
        for p in images:
            for ext in IMAGE_EXTENSIONS:
                for candidate in (p.with_name(p.stem + suffix + ext), p.with_name(p.stem + suffix + ext.upper())):
                    if candidate.is_file():
                        by_stem.setdefault(p, []).append(candidate)
        missing = [p for p in images if p not in by_stem]
        if missing:
            shown = ", ".join(show_path(p.relative_to(folder)) for p in missing[:5]) + (" ..." if len(missing) > 5
                                                                                         else "")
            raise DataError(f"{len(missing)} image(s) under {show_path(folder)} have no mask file next to them "
                            f"(<name>{suffix}.png, white = hole; {self.key}.suffix): {shown}")
        twice = [p for p, found in by_stem.items() if len(found) > 1]
        if twice:
            raise DataError(f"{show_path(twice[0])} has several mask files: "
                            f"{', '.join(show_path(f) for f in by_stem[twice[0]])}; keep one")
        return [by_stem[p][0] for p in images]


def center_mask(height: int, width: int, size: float = 0.5) -> np.ndarray:
    """The central square hole, ``size`` x the shorter side (at least 1 px), as a float32 (H, W) mask."""
    side = max(1, round(size * min(height, width)))
    y, x = (height - side) // 2, (width - side) // 2
    mask = np.zeros((height, width), np.float32)
    mask[y:y + side, x:x + side] = 1
    return mask


def match_mask_files(images: list[Path], image_root: Path, mask_root: Path, *, what: str = "--masks") -> list[Path]:
    """The mask under ``mask_root`` of each image under ``image_root``, matched by relative path without extension;
    DataError naming the images without a mask (and duplicate names among the masks)."""
    if not mask_root.is_dir():
        raise DataError(f"{what} {show_path(mask_root)}: no such folder of mask images (white = hole)")
    found: dict[Path, Path] = {}
    for m in list_images(mask_root):
        key = m.relative_to(mask_root).with_suffix("")
        if key in found:
            raise DataError(f"{what}: {show_path(found[key])} and {show_path(m)} have the same name: masks are matched "
                            "to images by relative path without extension")
        found[key] = m
    keys = [p.relative_to(image_root).with_suffix("") for p in images]
    missing = [p for p, k in zip(images, keys) if k not in found]
    if missing:
        shown = ", ".join(show_path(p.relative_to(image_root)) for p in missing[:5]) + (" ..." if len(missing) > 5
                                                                                         else "")
        raise DataError(f"{len(missing)} image(s) have no mask in {what} {show_path(mask_root)} (matched by relative "
                        f"path without extension, e.g. {show_path(keys[images.index(missing[0])])}.png): {shown}")
    return [found[k] for k in keys]


def read_mask(path: Path, shape: tuple[int, int] | None = None, *, image: Path | None = None) -> np.ndarray:
    """A mask file as float32 (H, W): 1 where it is white (>= 50%; any channels: their luminance, alpha dropped).
    ``shape`` (H, W): the size it must have (the image's, named by ``image``); DataError otherwise."""
    array = to_float(read_image(path))
    mask = (adapt_channels(array, 1)[..., 0] >= 0.5).astype(np.float32)
    if shape is not None and mask.shape != tuple(shape):
        of = f" (the mask of {show_path(image)}, {shape[1]}x{shape[0]})" if image is not None else ""
        raise DataError(f"mask {show_path(path)} is {mask.shape[1]}x{mask.shape[0]} px but must have its image's "
                        f"size{of}")
    return mask


def binarize(mask: np.ndarray) -> np.ndarray:
    """A transformed (resized, cropped) mask back to {0, 1}, float32 (H, W)."""
    return (np.asarray(mask).reshape(mask.shape[0], mask.shape[1]) >= 0.5).astype(np.float32)
