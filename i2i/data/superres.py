"""Super-resolution data: (LR, HR) pairs as ``real_a`` (LR) and ``real_b`` (HR), both in [-1, 1].

Three layouts, chosen from the arguments and the file names:

- HR only (``root``): every sample crops ``gt_size`` HR pixels at a random position and makes its LR on the fly
  by antialiased bicubic downscaling by ``scale`` (``torch.nn.functional.interpolate(mode='bicubic',
  antialias=True)``: Pillow's bicubic filter, a = -0.5, in float32 without 8-bit rounding; MATLAB's
  ``imresize``, which made the LR files of Set5/Set14, differs slightly at the borders).
- Two folders (``root`` = HR, ``lr_root`` = LR) matched by relative path without extension; an LR name may
  end in ``x<scale>`` (DIV2K: ``0001.png`` <-> ``0001x4.png``).
- One folder of Set5/Set14-style pairs (``lr_root`` unset, names ending ``_HR`` / ``_LR``, e.g.
  ``img_001_SRF_4_HR.png`` with ``img_001_SRF_4_LR.png``).

Paired crops are aligned: the LR crop of ``gt_size / scale`` pixels at (y, x) goes with the HR crop at
(y * scale, x * scale). ``augment`` applies one random flip/rot90 (8 dihedral transforms) to both images.
``degradations`` (albumentations pixel-level transforms: blur, noise, JPEG ...) act on the LR image only.
Images smaller than a crop raise DataError naming the file (no padding: padded borders would teach the net
to invent edges), whatever ``on_error`` says: that is a choice of ``gt_size``, not a damaged file. ``on_error``
(``skip`` | ``fail``) governs unreadable files as in the folder data sets: a pair with one is left out.
``crop: false`` gives whole images (HR trimmed to a multiple of ``scale``) for evaluation;
set ``augment: false`` too for a deterministic evaluation set.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import DataError, RecipeError
from ..registry import DATASETS
from .demo import DEMOS, ensure_demo
from .folders import FolderDataset, OnError, _check_on_error, _images
from .io import from_tensor, to_tensor
from .transforms import _from_spec, apply_transform


def bicubic_resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Float HWC -> float32 HWC of the given size: antialiased bicubic (Pillow's filter), not clipped."""
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32).transpose(2, 0, 1))[None]
    y = F.interpolate(x, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    return y[0].permute(1, 2, 0).numpy()


def bicubic_downscale(array: np.ndarray, scale: int) -> np.ndarray:
    """Float HWC in [0, 1] -> LR float32 of floor(H/scale) x floor(W/scale), clipped to [0, 1]."""
    if scale == 1:
        return np.array(array, dtype=np.float32)
    return np.clip(bicubic_resize(array, array.shape[0] // scale, array.shape[1] // scale), 0.0, 1.0)


def dihedral(array: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/rotations by 90 degrees: bit 0 h-flip, bit 1 v-flip, bit 2 transpose."""
    if code & 1:
        array = array[:, ::-1]
    if code & 2:
        array = array[::-1]
    if code & 4:
        array = array.transpose(1, 0, 2)
    return np.ascontiguousarray(array)


def _stem_key(path: Path, folder: Path) -> str:
    return str(path.relative_to(folder).with_suffix(""))


def _pair_folders(hr_dir: Path, lr_dir: Path, scale: int, problems: list | None = None) -> list[tuple[Path, Path]]:
    """(LR, HR) pairs of two folders matched by relative path without extension (LR may add 'x<scale>')."""
    hr = {_stem_key(p, hr_dir): p for p in _images(hr_dir, "the HR images (data.root)", problems)}
    lr: dict[str, Path] = {}
    for p in _images(lr_dir, "the LR images (data.lr_root), named like their HR partners", problems):
        key = _stem_key(p, lr_dir)
        if key not in hr and key.endswith(f"x{scale}") and key[: -len(f"x{scale}")] in hr:
            key = key[: -len(f"x{scale}")]
        if key in lr:
            raise DataError(f"{lr[key]} and {p} both match the HR image {hr.get(key, key)}")
        lr[key] = p
    _report_unmatched(hr, lr, hr_dir, lr_dir)
    return [(lr[k], hr[k]) for k in sorted(hr)]


def _pair_suffixes(files: list[Path], folder: Path) -> list[tuple[Path, Path]]:
    """(LR, HR) pairs of one folder whose names end in _LR / _HR (Set5, Set14 layout)."""
    hr, lr, other = {}, {}, []
    for p in files:
        key = _stem_key(p, folder)
        if key.endswith("_HR"):
            hr[key[:-3]] = p
        elif key.endswith("_LR"):
            lr[key[:-3]] = p
        else:
            other.append(p)
    if other:
        raise DataError(f"{folder} holds *_LR images, so every image there must end in _HR or _LR; these do not: "
                        + ", ".join(p.name for p in other[:5]) + (" ..." if len(other) > 5 else ""))
    _report_unmatched(hr, lr, folder, folder)
    return [(lr[k], hr[k]) for k in sorted(hr)]


def _report_unmatched(hr: dict, lr: dict, hr_dir: Path, lr_dir: Path) -> None:
    only_hr, only_lr = sorted(hr.keys() - lr.keys()), sorted(lr.keys() - hr.keys())
    parts = [f"{len(only)} {what} image(s) in {folder} have no {other} partner: "
             + ", ".join(side[k].name for k in only[:5]) + (" ..." if len(only) > 5 else "")
             for only, side, folder, what, other in ((only_hr, hr, hr_dir, "HR", "LR"),
                                                     (only_lr, lr, lr_dir, "LR", "HR")) if only]
    if parts:
        raise DataError("; ".join(parts))


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, None when Pillow cannot tell (checked again when decoded)."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _degradations(spec: Any, key: str) -> A.Compose | None:
    if spec is None:
        return None
    if not isinstance(spec, list):
        raise RecipeError("degradations must be a list of {type: ..., ...} albumentations mappings", key=key,
                          value=spec)
    steps = []
    for i, item in enumerate(spec):
        step = _from_spec(item, f"{key}[{i}]")
        if not isinstance(step, A.ImageOnlyTransform):
            raise RecipeError("degradations act on the LR image alone, so they must be pixel-level transforms "
                              "(blur, noise, JPEG ...): a geometric one would misalign LR and HR",
                              key=f"{key}[{i}]", value=item.get("type"))
        steps.append(step)
    return A.Compose(steps)


@DATASETS.register("superres_folder")
class SuperResFolder(FolderDataset):
    """(LR, HR) pairs from an HR folder (LR made on the fly) or LR/HR files -> real_a (LR), real_b (HR), paths."""

    def __init__(self, *, root: str, lr_root: str | None = None, scale: int = 4, gt_size: int = 128,
                 crop: bool = True, augment: bool = True, channels: int = 3, degradations: list | None = None,
                 cache: bool = False, demo: str | None = None, on_error: OnError = "skip"):
        args = {"scale": scale, "gt_size": gt_size, "crop": crop, "channels": channels, "degradations": degradations,
                "demo": demo}
        self.check_config(args, key="data", file=None)
        self.root, self.scale, self.gt_size = Path(root), scale, gt_size
        self._init_policy(on_error, self.root)
        if demo is not None and not self.root.exists():  # a demo data set (i2i.data.demo) is built on first use
            ensure_demo(demo, self.root)
        self.crop, self.augment = crop, augment
        self.channels = self._channels(args)
        self.degrade = _degradations(degradations, "data.degradations")
        self._cache: dict[Path, np.ndarray] | None = {} if cache else None
        if lr_root is not None:
            self.mode = "folders"
            pairs: list[tuple[Path | None, Path]] = list(_pair_folders(self.root, Path(lr_root), scale,
                                                                       self._listing))
        else:
            files = self._list(self.root, "HR images (LR made on the fly), or *_HR / *_LR pairs")
            if any(p.stem.endswith("_LR") for p in files):
                self.mode = "suffix"
                pairs = list(_pair_suffixes(files, self.root))
            else:
                self.mode = "hr_only"
                pairs = [(None, p) for p in files]
        keep = self._screen([tuple(p for p in pair if p is not None) for pair in pairs],
                            "HR image" if self.mode == "hr_only" else "LR/HR pair")
        self.pairs = [pair for pair, k in zip(pairs, keep) if k]
        if crop:
            self._check_sizes()

    # -- recipe validation without touching the disk
    @classmethod
    def check_config(cls, cfg: dict, *, key: str, file: str | None) -> None:
        params = inspect.signature(cls.__init__).parameters
        args = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
        args.update(cfg)
        scale, gt_size = args["scale"], args["gt_size"]
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise RecipeError("scale must be a positive integer (2, 3, 4, 8 ...)", file=file, key=f"{key}.scale",
                              value=scale)
        if not isinstance(gt_size, int) or isinstance(gt_size, bool) or gt_size <= 0:
            raise RecipeError("gt_size (the HR crop, in pixels) must be a positive integer", file=file,
                              key=f"{key}.gt_size", value=gt_size)
        if args["crop"] and gt_size % scale:
            lower, upper = gt_size - gt_size % scale, gt_size - gt_size % scale + scale
            sizes = f"{lower} or {upper}" if lower else f"{upper}"
            raise RecipeError(f"gt_size must be divisible by scale ({scale}) so that the LR crop is whole; use {sizes}",
                              file=file, key=f"{key}.gt_size", value=gt_size)
        channels = args["channels"]
        if not isinstance(channels, int) or isinstance(channels, bool) or channels <= 0:
            raise RecipeError("channels must be a positive integer", file=file, key=f"{key}.channels", value=channels)
        _degradations(args["degradations"], f"{key}.degradations")
        try:
            _check_on_error(args["on_error"])
        except RecipeError as exc:
            raise exc.in_file(file) if file else exc from None
        if args["demo"] is not None and args["demo"] not in DEMOS:
            raise RecipeError("unknown demo data set", file=file, key=f"{key}.demo", value=args["demo"], choices=DEMOS)

    @classmethod
    def channels_from_config(cls, **kwargs: Any) -> dict[str, int]:
        cls.check_config(kwargs, key="data", file=None)
        return cls._channels({"channels": 3, **kwargs})

    @classmethod
    def _layout(cls, root: Path, args: dict[str, Any]) -> None:
        if args["lr_root"] is not None:
            _pair_folders(root, Path(args["lr_root"]), args["scale"], [])
            return
        files = _images(root, "HR images (LR made on the fly), or *_HR / *_LR pairs", [])
        if any(p.stem.endswith("_LR") for p in files):
            _pair_suffixes(files, root)

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real_a": args["channels"], "real_b": args["channels"]}

    def _check_sizes(self) -> None:
        """Every image must hold one crop: report all the ones that do not, before training starts."""
        small = []
        for lr_path, hr_path in self.pairs:
            path, need = (hr_path, self.gt_size) if lr_path is None else (lr_path, self.gt_size // self.scale)
            size = _header_size(path)
            if size is not None and min(size) < need:
                small.append(f"{path} ({size[0]}x{size[1]})")
        if small:
            what = "HR" if self.mode == "hr_only" else "LR"
            raise DataError(f"{len(small)} {what} image(s) are smaller than the {what} crop of "
                            f"{self.gt_size if what == 'HR' else self.gt_size // self.scale} px "
                            f"(gt_size {self.gt_size}, scale {self.scale}): " + ", ".join(small[:5])
                            + (" ..." if len(small) > 5 else "") + "; lower gt_size or remove them")

    def __len__(self) -> int:
        return len(self.pairs)

    def _item(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor | str]:
        lr_path, hr_path = self.pairs[index]
        s = self.scale
        hr = self._adapt(self._read(hr_path), "real_b", hr_path, "channels")
        if lr_path is None:
            if self.crop:
                y, x = self._origin(hr, self.gt_size, hr_path, rng)
                hr = hr[y:y + self.gt_size, x:x + self.gt_size]
            else:
                hr = hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s]
            if self.augment:
                hr = dihedral(hr, int(rng.integers(8)))
            lr = bicubic_downscale(hr, s)
        else:
            lr = self._adapt(self._read(lr_path), "real_a", lr_path, "channels")
            h, w = lr.shape[:2]
            if (hr.shape[0] // s, hr.shape[1] // s) != (h, w):
                raise DataError(f"{lr_path} is {w}x{h} but its HR partner {hr_path} is {hr.shape[1]}x{hr.shape[0]}: "
                                f"with scale {s} the HR image must be {w * s}x{h * s} (up to {s - 1} extra pixels)")
            hr = hr[: h * s, : w * s]
            if self.crop:
                size = self.gt_size // s
                y, x = self._origin(lr, size, lr_path, rng)
                lr, hr = lr[y:y + size, x:x + size], hr[y * s:(y + size) * s, x * s:(x + size) * s]
            if self.augment:
                code = int(rng.integers(8))
                lr, hr = dihedral(lr, code), dihedral(hr, code)
        if self.degrade is not None:
            lr = apply_transform(self.degrade, {"image": np.ascontiguousarray(lr)}, int(rng.integers(2**32)))["image"]
        return {"real_a": to_tensor(lr), "real_b": to_tensor(hr), "path_a": str(lr_path or hr_path),
                "path_b": str(hr_path)}

    @staticmethod
    def _origin(array: np.ndarray, size: int, path: Path, rng: np.random.Generator) -> tuple[int, int]:
        h, w = array.shape[:2]
        if h < size or w < size:
            raise DataError(f"{path} is {w}x{h}, smaller than the {size}x{size} crop; lower gt_size or remove it")
        return int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))


def load_sr_pairs(root: str, *, scale: int, lr_root: str | None = None,
                  channels: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Whole (LR, HR) uint8 HWC pairs for ``evaluate_sr``: the given LR files, or bicubic LR rounded to 8 bits."""
    ds = SuperResFolder(root=root, lr_root=lr_root, scale=scale, crop=False, augment=False, channels=channels)
    out = []
    for i in range(len(ds)):
        sample = ds[i]
        out.append((from_tensor(sample["real_a"]), from_tensor(sample["real_b"])))
    return out

