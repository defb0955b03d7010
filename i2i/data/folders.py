"""Folder data sets: paired (pix2pix), unpaired (CycleGAN) and single-domain images, as [-1, 1] tensors.

Every ``__getitem__`` takes an index or ``(index, sample_seed)``; the sample is a pure function of that pair
(augmentation and random pairing included), so runs are reproducible and resumable mid-epoch.

Unusable files (``data.on_error``; see ``FolderDataset``): with ``skip`` (the default) a file that cannot be read
(missing, unreadable, empty, not an image, corrupt, truncated, too large, unsupported samples) is left out with a
warning naming it and the reason; with ``fail`` the first one raises ``DataError`` naming it. A check at build time
finds most such files before training: the header of every file (``probe_image``), and a full decode of every
file when the whole set is small (at most ``FULL_CHECK_PIXELS`` pixels by the headers). A file that passes the
check but fails when decoded during training (truncated JPEG data in a large set) is replaced by another item:
the substitute is a pure function of ``(index, sample_seed)`` and of which files decode, so resumed runs stay
identical. Files without an image extension are not listed at all; folders that cannot be listed are reported
like bad files. Images smaller than ``size`` are resized like every other image (the default pipeline resizes to
``load_size`` or ``size``), so they are not skipped. Layout problems (an odd-width aligned pair, paired images of
different sizes, a channel count that cannot be adapted) are errors in both modes.
"""
from __future__ import annotations

import inspect
import logging
import operator
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError, RecipeError
from ..registry import DATASETS
from .demo import DEMOS, ensure_demo
from .io import (
    UnreadableImage,
    adapt_channels,
    list_images,
    probe_image,
    read_image,
    show_path,
    to_float,
    to_tensor,
)
from .masks import MaskSource, binarize
from .transforms import apply_transform, build_transform

log = logging.getLogger("i2i")
Item = int | tuple[int, int]
OnError = Literal["skip", "fail"]
FULL_CHECK_PIXELS = 2**27  # build-time check decodes every file when the set holds at most this many pixels
MAX_SUBSTITUTES = 64  # an item whose file fails to decode tries this many substitutes before giving up
_SHOWN = 5  # bad files named in an error message


def _main_process() -> bool:
    """Rank 0 of a launched run (or a plain run): the one that reports skipped files."""
    return os.environ.get("RANK", "0") == "0"


class SkipPolicy:
    """What ``data.on_error`` does: the build-time check, skipping or failing, substitutes, the skip summary.

    Mixed into every folder-based data set. Subclasses call ``_init_policy`` first, ``_screen`` on their file
    lists, and implement ``_item(index, rng)``; ``__getitem__`` then replaces items whose files fail to decode.
    """

    on_error: str
    _cache: dict[Path, np.ndarray] | None

    def _init_policy(self, on_error: Any, where: Path) -> None:
        _check_on_error(on_error)
        self.on_error, self._where = on_error, where
        self._listing: list[tuple[Path, str]] = []  # folders that could not be listed
        self._skipped: list[tuple[Path, str]] = []  # files left out by the build-time check
        self._bad: dict[Path, str] = {}  # files that failed to decode after the check (in this process)
        self._files_listed = 0

    def _list(self, folder: Path, expected: str) -> list[Path]:
        return _images(folder, expected, self._listing)

    def _screen(self, groups: list[tuple[Path, ...]], what: str = "image") -> list[bool]:
        """Check every file of ``groups`` (the files of one item each); which items keep all their files.

        ``fail``: raises at the first unusable file in sorted order. ``skip``: warns once per file with the
        reason; raises when no item is left.
        """
        for folder, reason in self._listing:
            if self.on_error == "fail":
                raise DataError(f"cannot list {show_path(folder)}: {reason} (data.on_error: fail)")
        files = sorted({p for g in groups for p in g})
        self._files_listed += len(files)
        bad = _check_files(files, self.on_error, self._cache)
        if self.on_error == "fail" and bad:
            path, reason = next(iter(bad.items()))
            raise UnreadableImage(path, f"{reason} (data.on_error: fail; 'skip' leaves such files out)")
        keep = [not any(p in bad for p in g) for g in groups]
        new = [(f, r) for f, r in self._listing if (f, r) not in self._skipped] + list(bad.items())
        if new and _main_process():
            for path, reason in new:
                log.warning("data: skipping %s: %s", show_path(path), reason)
        self._skipped += new
        if not any(keep):
            shown = "; ".join(f"{show_path(p)}: {r}" for p, r in new[:_SHOWN]) + (" ..." if len(new) > _SHOWN else "")
            raise DataError(f"no usable {what}s under {show_path(self._where)}: all {len(files)} file(s) were "
                            f"left out: {shown}" if files else f"no usable {what}s under {show_path(self._where)}")
        if bad and _main_process():
            log.warning("data: %d of %d %s file(s) under %s left out (data.on_error: skip); %d of %d item(s) kept",
                        len(bad), len(files), what, show_path(self._where), sum(keep), len(keep))
        return keep

    # -- per-sample
    def _read(self, path: Path) -> np.ndarray:
        """Decoded float32 HWC in [0, 1]. The only place files are read; raises UnreadableImage."""
        if self._cache is not None and path in self._cache:
            return self._cache[path]
        if path in self._bad:
            raise UnreadableImage(path, self._bad[path])
        try:
            array = to_float(read_image(path))  # float before any resize keeps 16-bit precision
        except UnreadableImage as exc:
            if self.on_error == "skip":
                self._bad[path] = exc.reason
                log.warning("data: skipping %s: %s (found while loading; items using it are replaced by others)",
                            show_path(path), exc.reason)
            raise
        if self._cache is not None:
            self._cache[path] = array
        return array

    def _item(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, item: Item) -> dict[str, Any]:
        index, seed = _index_and_seed(item, len(self))
        current = index
        for attempt in range(MAX_SUBSTITUTES + 1):
            try:
                return self._item(current, np.random.default_rng([current, seed]))
            except UnreadableImage as exc:
                if self.on_error == "fail" or exc.path is None:
                    raise
                last = exc
            # the substitute depends on (index, seed, attempt) only: the same item always gets the same one
            current = int(np.random.default_rng([index, seed, attempt, 0x5EB5]).integers(len(self)))
        raise DataError(f"{MAX_SUBSTITUTES + 1} files in a row could not be decoded (the last: {last}); "
                        f"check the data under {show_path(self._where)}")

    def skip_summary(self, log_summary: bool = True) -> dict[str, int]:
        """Files left out: by the build-time check (all processes agree) plus those that failed to decode later in
        this process (with DataLoader workers, failures inside a worker are logged by it but not counted here)."""
        out = {"skipped": len(self._skipped) + len(self._bad), "skipped_at_build": len(self._skipped),
               "skipped_while_loading": len(self._bad), "files": self._files_listed, "items": len(self)}
        if log_summary and out["skipped"]:
            names = [show_path(p) for p, _ in self._skipped + list(self._bad.items())]
            log.warning("data: %d file(s) skipped (%d by the check at build time, %d while loading in the main "
                        "process; see the warnings above): %s", out["skipped"], out["skipped_at_build"],
                        out["skipped_while_loading"], ", ".join(names[:20]) + (" ..." if len(names) > 20 else ""))
        return out

    def __len__(self) -> int:
        raise NotImplementedError


def _check_on_error(on_error: Any) -> None:
    if on_error not in ("skip", "fail"):
        raise RecipeError("on_error must be 'skip' (leave unusable image files out, with a warning) or 'fail' "
                          "(stop at the first one)", key="data.on_error", value=on_error, choices=["fail", "skip"])


def _index_and_seed(item: Item, length: int) -> tuple[int, int]:
    index, seed = item if isinstance(item, (tuple, list)) else (item, item)
    index = operator.index(index)
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for {length} samples")
    return index, operator.index(seed) % 2**64


def _check_workers() -> int:
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(8, os.cpu_count() or 1))


def _check_files(files: list[Path], on_error: str, cache: dict | None) -> dict[Path, str]:
    """Unusable files among ``files`` (sorted) -> reason: headers of all, then a full decode when the set is
    small. With ``fail``, only the first unusable file in sorted order is returned."""
    bad: dict[Path, str] = {}
    if not files:
        return bad
    sizes: dict[Path, tuple[int, int]] = {}

    def header(path: Path) -> tuple[int, int] | UnreadableImage:
        try:
            return probe_image(path)
        except UnreadableImage as exc:
            return exc

    def decode(path: Path) -> np.ndarray | None | UnreadableImage:
        try:
            array = read_image(path)
        except UnreadableImage as exc:
            return exc
        return to_float(array) if cache is not None else None  # what _read caches

    pool = ThreadPoolExecutor(_check_workers(), thread_name_prefix="i2i-check")
    try:
        first = len(files)
        for i, (path, result) in enumerate(zip(files, pool.map(header, files))):
            if isinstance(result, UnreadableImage):
                bad[path] = result.reason
                if on_error == "fail":
                    first = i
                    break
            else:
                sizes[path] = result
        if sum(w * h for w, h in sizes.values()) <= FULL_CHECK_PIXELS:
            todo = [p for p in files[:first] if p not in bad]
            for path, result in zip(todo, pool.map(decode, todo)):
                if isinstance(result, UnreadableImage):
                    bad[path] = result.reason
                    if on_error == "fail":
                        return {path: result.reason}
                elif cache is not None:
                    cache[path] = result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return dict(sorted(bad.items())[: 1 if on_error == "fail" else None])


class FolderDataset(SkipPolicy, Dataset):
    """Shared machinery: argument checks, demo building, the one image-reading path, seeded transforms, the
    ``on_error`` policy for unusable files (see the module docstring)."""

    mask_files_supported = False  # data.mask {type: files}: the data set pairs its images with mask files

    def __init__(self, *, root: str, size: int, load_size: int | None, flip: bool, transforms: list | None,
                 cache: bool, demo: str | None, channels: dict[str, int], on_error: str = "skip",
                 mask: dict | None = None):
        _check_config(size=size, load_size=load_size, demo=demo, channels=channels)
        self.mask = self._mask_source(mask)  # data.mask: items get a hole mask (i2i/data/masks.py)
        self._mask_files: dict[Path, Path] = {}  # image -> its mask file (data.mask {type: files})
        self.root = Path(root)
        self._init_policy(on_error, self.root)
        if demo is not None and not self.root.exists():
            ensure_demo(demo, self.root)
        self.channels = channels
        targets = tuple(channels) + (("mask",) if self.mask is not None and self.mask.reads_files else ())
        self.transform = build_transform(size, load_size, flip, transforms, targets)
        self._cache: dict[Path, np.ndarray] | None = {} if cache else None

    @classmethod
    def _mask_source(cls, mask: Any) -> MaskSource | None:
        source = MaskSource.from_config(mask)
        if source is not None and source.reads_files and not cls.mask_files_supported:
            raise RecipeError(f"mask files are paired with the images of single_folder data sets; {cls.__name__} "
                              "draws its masks (center, blocks, strokes)", key="data.mask.type", value="files",
                              choices=("blocks", "center", "strokes"))
        return source

    # -- recipe validation without touching the disk
    @classmethod
    def _arguments(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The constructor's arguments: ``kwargs`` over its defaults."""
        params = inspect.signature(cls.__init__).parameters
        args = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
        args.update(kwargs)
        return args

    @classmethod
    def channels_from_config(cls, **kwargs: Any) -> dict[str, int]:
        """The ``channels`` dict the data set will have; also checks sizes, demo name and transforms."""
        args = cls._arguments(kwargs)
        channels = cls._channels(args)
        _check_config(size=args["size"], load_size=args["load_size"], demo=args["demo"], channels=channels)
        _check_on_error(args.get("on_error", "skip"))
        cls._mask_source(args.get("mask"))
        build_transform(args["size"], args["load_size"], args["flip"], args["transforms"], tuple(channels))
        return channels

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        raise NotImplementedError

    # -- the layout on disk, cheaply: for `i2i check`, and before training writes anything
    @classmethod
    def check_layout(cls, **kwargs: Any) -> None:
        """Raise DataError when the files this data set would read are not there in its layout. Folders are
        listed and file names matched; no image is opened (the build-time check does that)."""
        args = cls._arguments(kwargs)
        cls._layout(Path(args["root"]), args)

    @classmethod
    def _layout(cls, root: Path, args: dict[str, Any]) -> None:
        """List what the data set reads under ``root`` (the same listing its constructor does)."""

    # -- per-sample helpers
    def _adapt(self, array: np.ndarray, name: str, path: Path, argument: str) -> np.ndarray:
        try:
            return adapt_channels(array, self.channels[name])
        except ValueError:
            raise DataError(f"{path} has {array.shape[2]} channels; {argument}={self.channels[name]} "
                            "cannot be made from it (1<->3 and dropping alpha are automatic)") from None

    def _index_and_rng(self, item: Item) -> tuple[int, np.random.Generator]:
        index, seed = _index_and_seed(item, len(self))
        return index, np.random.default_rng([index, seed])

    def _finish(self, arrays: dict[str, np.ndarray], rng: np.random.Generator,
                paths: dict[str, Path]) -> dict[str, torch.Tensor | str]:
        files = self.mask is not None and self.mask.reads_files
        if files:  # the mask file goes through the same geometric transform as its image
            arrays = {**arrays, "mask": self._read_mask(next(iter(paths.values())), next(iter(arrays.values())))}
        out = _transform(self.transform, arrays, int(rng.integers(2**32)), paths)
        item: dict[str, torch.Tensor | str] = {k: to_tensor(v) for k, v in out.items() if k != "mask"}
        if self.mask is not None:  # (1, H, W), 1 in the hole; drawn after the transform, at the crop's size
            h, w = next(iter(out.values())).shape[:2]
            hole = binarize(out["mask"]) if files else self.mask.generate(h, w, rng)
            item["mask"] = torch.from_numpy(np.ascontiguousarray(hole))[None]
        return {**item, **{k: str(p) for k, p in paths.items()}}

    def _read_mask(self, image_path: Path, image: np.ndarray) -> np.ndarray:
        path = self._mask_files[image_path]
        hole = (adapt_channels(self._read(path), 1) >= 0.5).astype(np.float32)  # white = hole
        if hole.shape[:2] != image.shape[:2]:
            raise DataError(f"mask {show_path(path)} is {hole.shape[1]}x{hole.shape[0]} px but its image "
                            f"{show_path(image_path)} is {image.shape[1]}x{image.shape[0]}: a mask has its image's "
                            "size")
        return hole


def _transform(transform, arrays: dict[str, np.ndarray], seed: int, paths: dict) -> dict[str, np.ndarray]:
    """apply_transform, with a failure (a crop larger than a small image, say) naming the file(s) and sizes."""
    try:
        return apply_transform(transform, arrays, seed)
    except Exception as exc:  # albumentations raises plain Exception subclasses (CropSizeError)
        shown = ", ".join(f"{show_path(p)} ({a.shape[1]}x{a.shape[0]})"
                          for p, a in zip(paths.values(), arrays.values()))
        raise DataError(f"data.transforms failed on {shown}: {exc} (a crop larger than the image? resize first, "
                        "or use pad_if_needed)") from exc


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


def _images(folder: Path, expected: str, problems: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Image files under ``folder``; folders that cannot be listed go to ``problems`` (logged when it is None)."""
    if not folder.is_dir():
        raise DataError(f"folder {show_path(folder)} does not exist; expected {expected}")
    found: list[tuple[Path, str]] = []
    files = list_images(folder, errors=found)
    if problems is not None:
        problems += found
    else:
        for where, reason in found:
            log.warning("data: skipping %s: %s", show_path(where), reason)
    if not files:
        unlisted = f" ({len(found)} folder(s) could not be listed: {show_path(found[0][0])}: {found[0][1]})" if found \
            else ""
        raise DataError(f"folder {show_path(folder)} holds no images (png, jpg, tif, bmp, webp){unlisted}; "
                        f"expected {expected}")
    return files


def _match(folder_a: Path, folder_b: Path, expected: str,
           problems: list[tuple[Path, str]] | None = None) -> list[tuple[Path, Path]]:
    """Pair files of A/ and B/ by relative path without extension; report the unmatched ones."""
    def index(folder: Path) -> dict[Path, Path]:
        found: dict[Path, Path] = {}
        for p in _images(folder, expected, problems):
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
    """Paired (pix2pix): <split>/*.png as A|B side by side, or <split>/A/ + <split>/B/ -> real_a, real_b, paths.

    A pair with an unusable file is left out whole (``on_error: skip``).
    """

    def __init__(self, *, root: str, split: str = "train", layout: Literal["aligned", "folders"] = "aligned",
                 direction: Literal["AtoB", "BtoA"] = "AtoB", a_channels: int = 3, b_channels: int = 3,
                 size: int = 256, load_size: int | None = None, flip: bool = True, transforms: list | None = None,
                 cache: bool = False, demo: str | None = None, on_error: OnError = "skip", mask: dict | None = None):
        super().__init__(root=root, size=size, load_size=load_size, flip=flip, transforms=transforms, cache=cache,
                         demo=demo, channels=self._channels(dict(a_channels=a_channels, b_channels=b_channels)),
                         on_error=on_error, mask=mask)
        self.layout, self.direction = layout, direction
        files = self._pairs(self.root, split, layout, self._listing)
        keep = self._screen(files, "pair" if layout == "folders" else "image")
        self.files = [f for f, k in zip(files, keep) if k]

    @staticmethod
    def _pairs(root: Path, split: str, layout: str, problems: list) -> list[tuple[Path, Path]]:
        folder = root / split
        if layout == "aligned":
            expected = f"{split}/ under {root} holding A|B images side by side (layout 'aligned')"
            return [(p, p) for p in _images(folder, expected, problems)]
        expected = f"{split}/A/ and {split}/B/ under {root} with matching file names (layout 'folders')"
        return _match(folder / "A", folder / "B", expected, problems)

    @classmethod
    def _layout(cls, root: Path, args: dict[str, Any]) -> None:
        cls._pairs(root, args["split"], args["layout"], [])

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real_a": args["a_channels"], "real_b": args["b_channels"]}

    def __len__(self) -> int:
        return len(self.files)

    def _item(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor | str]:
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
                 cache: bool = False, demo: str | None = None, on_error: OnError = "skip"):
        super().__init__(root=root, size=size, load_size=load_size, flip=flip, transforms=transforms, cache=cache,
                         demo=demo, channels=self._channels(dict(a_channels=a_channels, b_channels=b_channels)),
                         on_error=on_error)
        files_a, files_b = self._domains(self.root, split, self._listing)
        keep_a = self._screen([(p,) for p in files_a], f"{split}A image")
        keep_b = self._screen([(p,) for p in files_b], f"{split}B image")
        self.files_a = [p for p, k in zip(files_a, keep_a) if k]
        self.files_b = [p for p, k in zip(files_b, keep_b) if k]

    @staticmethod
    def _domains(root: Path, split: str, problems: list) -> tuple[list[Path], list[Path]]:
        expected = f"{split}A/ and {split}B/ under {root}, one folder of images per domain"
        return _images(root / f"{split}A", expected, problems), _images(root / f"{split}B", expected, problems)

    @classmethod
    def _layout(cls, root: Path, args: dict[str, Any]) -> None:
        cls._domains(root, args["split"], [])

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real_a": args["a_channels"], "real_b": args["b_channels"]}

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def _item(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor | str]:
        # B is drawn from the sample's own generator, so the pairing is random yet reproducible.
        path_a, path_b = self.files_a[index % len(self.files_a)], self.files_b[int(rng.integers(len(self.files_b)))]
        a = self._adapt(self._read(path_a), "real_a", path_a, "a_channels")
        b = self._adapt(self._read(path_b), "real_b", path_b, "b_channels")
        # Unrelated images (often of different sizes) get independent crops and flips, as in CycleGAN.
        seed_a, seed_b = (int(s) for s in rng.integers(2**32, size=2))
        return {"real_a": to_tensor(_transform(self.transform, {"image": a}, seed_a, {"a": path_a})["image"]),
                "real_b": to_tensor(_transform(self.transform, {"image": b}, seed_b, {"b": path_b})["image"]),
                "path_a": str(path_a), "path_b": str(path_b)}


@DATASETS.register("single_folder")
class SingleFolder(FolderDataset):
    """One domain: all images under root/<split>/ if that folder exists, else under root -> real_a, path_a.

    With ``mask: {type: files}`` each image is paired with its mask file (i2i/data/masks.py); an image whose mask is
    missing is an error, one whose mask is unusable is left out with it (``on_error: skip``).
    """

    mask_files_supported = True

    def __init__(self, *, root: str, split: str = "train", channels: int = 3, size: int = 256,
                 load_size: int | None = None, flip: bool = True, transforms: list | None = None,
                 cache: bool = False, demo: str | None = None, on_error: OnError = "skip", mask: dict | None = None):
        super().__init__(root=root, size=size, load_size=load_size, flip=flip, transforms=transforms, cache=cache,
                         demo=demo, channels=self._channels(dict(channels=channels)), on_error=on_error, mask=mask)
        files = self._files(self.root, split, self._listing)
        groups: list[tuple[Path, ...]] = [(p,) for p in files]
        if self.mask is not None and self.mask.reads_files:
            files = [p for p in files if not self.mask.is_mask_file(p)]
            folder = self.root / split if (self.root / split).is_dir() else self.root
            groups = list(zip(files, self.mask.pair(files, folder)))
            self._mask_files = dict(groups)
        self.files = [p for p, k in zip(files, self._screen(groups)) if k]

    @staticmethod
    def _files(root: Path, split: str, problems: list) -> list[Path]:
        folder = root / split if (root / split).is_dir() else root
        return _images(folder, f"images under {root} (or under {root / split} when it exists)", problems)

    @classmethod
    def _layout(cls, root: Path, args: dict[str, Any]) -> None:
        cls._files(root, args["split"], [])

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real_a": args["channels"]}

    def __len__(self) -> int:
        return len(self.files)

    def _item(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor | str]:
        path = self.files[index]
        return self._finish({"real_a": self._adapt(self._read(path), "real_a", path, "channels")}, rng,
                            {"path_a": path})
