"""Folder data sets: paired (pix2pix), unpaired (CycleGAN) and single-domain images, as [-1, 1] tensors.

Every ``__getitem__`` takes an index or ``(index, sample_seed)``; the sample is a pure function of that pair
(augmentation and random pairing included), so runs are reproducible and resumable mid-epoch.
"""
from __future__ import annotations

import inspect
import operator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError, RecipeError
from ..registry import DATASETS
from .demo import DEMOS, ensure_demo
from .io import adapt_channels, list_images, read_image, to_float, to_tensor
from .transforms import apply_transform, build_transform

Item = int | tuple[int, int]


class FolderDataset(Dataset):
    """Shared machinery: argument checks, demo building, the one image-reading path, seeded transforms."""

    def __init__(self, *, root: str, size: int, load_size: int | None, flip: bool, transforms: list | None,
                 cache: bool, demo: str | None, channels: dict[str, int]):
        _check_config(size=size, load_size=load_size, demo=demo, channels=channels)
        self.root = Path(root)
        if demo is not None and not self.root.exists():
            ensure_demo(demo, self.root)
        self.channels = channels
        self.transform = build_transform(size, load_size, flip, transforms, tuple(channels))
        self._cache: dict[Path, np.ndarray] | None = {} if cache else None

    # -- recipe validation without touching the disk
    @classmethod
    def channels_from_config(cls, **kwargs: Any) -> dict[str, int]:
        """The ``channels`` dict the data set will have; also checks sizes, demo name and transforms."""
        params = inspect.signature(cls.__init__).parameters
        args = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
        args.update(kwargs)
        channels = cls._channels(args)
        _check_config(size=args["size"], load_size=args["load_size"], demo=args["demo"], channels=channels)
        build_transform(args["size"], args["load_size"], args["flip"], args["transforms"], tuple(channels))
        return channels

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        raise NotImplementedError

    # -- per-sample helpers
    def _read(self, path: Path) -> np.ndarray:
        """Decoded float32 HWC in [0, 1]. The only place files are read (a skip policy would go here)."""
        if self._cache is not None and path in self._cache:
            return self._cache[path]
        array = to_float(read_image(path))  # float before any resize keeps 16-bit precision
        if self._cache is not None:
            self._cache[path] = array
        return array

    def _adapt(self, array: np.ndarray, name: str, path: Path, argument: str) -> np.ndarray:
        try:
            return adapt_channels(array, self.channels[name])
        except ValueError:
            raise DataError(f"{path} has {array.shape[2]} channels; {argument}={self.channels[name]} "
                            "cannot be made from it (1<->3 and dropping alpha are automatic)") from None

    def _index_and_rng(self, item: Item) -> tuple[int, np.random.Generator]:
        index, seed = item if isinstance(item, (tuple, list)) else (item, item)
        index = operator.index(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        return index, np.random.default_rng([index, operator.index(seed) % 2**64])

    def _finish(self, arrays: dict[str, np.ndarray], rng: np.random.Generator,
                paths: dict[str, Path]) -> dict[str, torch.Tensor | str]:
        out = apply_transform(self.transform, arrays, int(rng.integers(2**32)))
        return {**{k: to_tensor(v) for k, v in out.items()}, **{k: str(p) for k, p in paths.items()}}


def _check_config(*, size: Any, load_size: Any, demo: Any, channels: dict[str, Any]) -> None:
    if not isinstance(size, int) or size <= 0:
        raise RecipeError("size must be a positive integer", key="data.size", value=size)
    if load_size is not None and (not isinstance(load_size, int) or load_size < size):
        raise RecipeError(f"load_size must be an integer >= size ({size}) or null", key="data.load_size",
                          value=load_size)
    if demo is not None and demo not in DEMOS:
        raise RecipeError("unknown demo data set", key="data.demo", value=demo, choices=DEMOS)
    for name, count in channels.items():
        if not isinstance(count, int) or count <= 0:
            raise RecipeError(f"channel count for {name} must be a positive integer", key="data", value=count)


def _images(folder: Path, expected: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist; expected {expected}")
    files = list_images(folder)
    if not files:
        raise DataError(f"folder {folder} holds no images (png, jpg, tif, bmp, webp); expected {expected}")
    return files


def _match(folder_a: Path, folder_b: Path, expected: str) -> list[tuple[Path, Path]]:
    """Pair files of A/ and B/ by relative path without extension; report the unmatched ones."""
    def index(folder: Path) -> dict[Path, Path]:
        found: dict[Path, Path] = {}
        for p in _images(folder, expected):
            key = p.relative_to(folder).with_suffix("")
            if key in found:
                raise DataError(f"{found[key]} and {p} have the same name: pairs are matched by name")
            found[key] = p
        return found

    a, b = index(folder_a), index(folder_b)
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    if only_a or only_b:
        parts = [f"{len(only)} file(s) in {folder} have no partner in {other}: "
                 + ", ".join(str(side[k].relative_to(folder)) for k in only[:5]) + (" ..." if len(only) > 5 else "")
                 for only, side, folder, other in ((only_a, a, folder_a, folder_b), (only_b, b, folder_b, folder_a))
                 if only]
        raise DataError("; ".join(parts) + " (pairs are matched by relative path without extension)")
    return [(a[k], b[k]) for k in sorted(a)]


@DATASETS.register("paired_folder")
class PairedFolder(FolderDataset):
    """Paired (pix2pix): <split>/*.png as A|B side by side, or <split>/A/ + <split>/B/ -> real_a, real_b, path_a, path_b."""

    def __init__(self, *, root: str, split: str = "train", layout: Literal["aligned", "folders"] = "aligned",
                 direction: Literal["AtoB", "BtoA"] = "AtoB", a_channels: int = 3, b_channels: int = 3,
                 size: int = 256, load_size: int | None = None, flip: bool = True, transforms: list | None = None,
                 cache: bool = False, demo: str | None = None):
        super().__init__(root=root, size=size, load_size=load_size, flip=flip, transforms=transforms, cache=cache,
                         demo=demo, channels=self._channels(dict(a_channels=a_channels, b_channels=b_channels)))
        self.layout, self.direction = layout, direction
        folder = self.root / split
        if layout == "aligned":
            expected = f"{split}/ under {self.root} holding A|B images side by side (layout 'aligned')"
            self.files = [(p, p) for p in _images(folder, expected)]
        else:
            expected = f"{split}/A/ and {split}/B/ under {self.root} with matching file names (layout 'folders')"
            self.files = _match(folder / "A", folder / "B", expected)

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real_a": args["a_channels"], "real_b": args["b_channels"]}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: Item) -> dict[str, torch.Tensor | str]:
        index, rng = self._index_and_rng(item)
        path_a, path_b = self.files[index]
        if self.layout == "aligned":
            whole = self._read(path_a)
            width = whole.shape[1]
            if width % 2:
                raise DataError(f"{path_a} is {width} pixels wide: an aligned A|B image needs an even width")
            a, b = whole[:, : width // 2], whole[:, width // 2:]
        else:
            a, b = self._read(path_a), self._read(path_b)
            if a.shape[:2] != b.shape[:2]:
                raise DataError(f"{path_a} is {a.shape[1]}x{a.shape[0]} but its partner {path_b} is "
                                f"{b.shape[1]}x{b.shape[0]}: paired images must have the same size")
        if self.direction == "BtoA":
            a, b, path_a, path_b = b, a, path_b, path_a
        arrays = {"real_a": self._adapt(a, "real_a", path_a, "a_channels"),
                  "real_b": self._adapt(b, "real_b", path_b, "b_channels")}
        return self._finish(arrays, rng, {"path_a": path_a, "path_b": path_b})


@DATASETS.register("unpaired_folder")
class UnpairedFolder(FolderDataset):
    """Unpaired (CycleGAN): <split>A/ and <split>B/, B drawn at random per sample -> real_a, real_b, path_a, path_b."""

    def __init__(self, *, root: str, split: str = "train", a_channels: int = 3, b_channels: int = 3,
                 size: int = 256, load_size: int | None = None, flip: bool = True, transforms: list | None = None,
                 cache: bool = False, demo: str | None = None):
        super().__init__(root=root, size=size, load_size=load_size, flip=flip, transforms=transforms, cache=cache,
                         demo=demo, channels=self._channels(dict(a_channels=a_channels, b_channels=b_channels)))
        expected = f"{split}A/ and {split}B/ under {self.root}, one folder of images per domain"
        self.files_a = _images(self.root / f"{split}A", expected)
        self.files_b = _images(self.root / f"{split}B", expected)

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real_a": args["a_channels"], "real_b": args["b_channels"]}

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __getitem__(self, item: Item) -> dict[str, torch.Tensor | str]:
        index, rng = self._index_and_rng(item)
        # B is drawn from the sample's own generator, so the pairing is random yet reproducible.
        path_a, path_b = self.files_a[index % len(self.files_a)], self.files_b[int(rng.integers(len(self.files_b)))]
        a = self._adapt(self._read(path_a), "real_a", path_a, "a_channels")
        b = self._adapt(self._read(path_b), "real_b", path_b, "b_channels")
        # Unrelated images (often of different sizes) get independent crops and flips, as in CycleGAN.
        seed_a, seed_b = (int(s) for s in rng.integers(2**32, size=2))
        return {"real_a": to_tensor(apply_transform(self.transform, {"image": a}, seed_a)["image"]),
                "real_b": to_tensor(apply_transform(self.transform, {"image": b}, seed_b)["image"]),
                "path_a": str(path_a), "path_b": str(path_b)}


@DATASETS.register("single_folder")
class SingleFolder(FolderDataset):
    """One domain: all images under root/<split>/ if that folder exists, else under root -> real_a, path_a."""

    def __init__(self, *, root: str, split: str = "train", channels: int = 3, size: int = 256,
                 load_size: int | None = None, flip: bool = True, transforms: list | None = None,
                 cache: bool = False, demo: str | None = None):
        super().__init__(root=root, size=size, load_size=load_size, flip=flip, transforms=transforms, cache=cache,
                         demo=demo, channels=self._channels(dict(channels=channels)))
        folder = self.root / split if (self.root / split).is_dir() else self.root
        self.files = _images(folder, f"images under {self.root} (or under {self.root / split} when it exists)")

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real_a": args["channels"]}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: Item) -> dict[str, torch.Tensor | str]:
        index, rng = self._index_and_rng(item)
        path = self.files[index]
        return self._finish({"real_a": self._adapt(self._read(path), "real_a", path, "channels")}, rng,
                            {"path_a": path})
