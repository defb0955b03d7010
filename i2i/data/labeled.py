"""Images with class labels (CGAN, ACGAN, InfoGAN, evaluation classifiers): class folders or MNIST-style .npz.

Both sources go through the folder data sets' transform pipeline and ``(index, sample_seed)`` protocol; an item
is ``{"real": (C, size, size) in [-1, 1], "y": int64 scalar, "path": str}``.

Semi-supervised training (``labeled_fraction`` or ``labels_per_class``): only a subset keeps its labels, chosen by
``labeled_subset`` from ``label_seed`` alone (the same subset for every training seed, for SGAN and for the
supervised baseline ``i2i classifier``). Every image is still an item; an unlabeled item has ``y = -1``
(``UNLABELED``), and each item also carries one image of the labeled subset, ``real_labeled`` / ``y_labeled``
(drawn from the item's index and sample seed), so every batch has as many labeled images as unlabeled ones.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError, RecipeError
from ..registry import DATASETS
from .folders import FolderDataset, OnError, _images
from .io import adapt_channels, to_float

LIMIT_SEED = 0  # the fixed shuffle that ``limit`` takes its first N items from
_SPLIT_NAMES = {"train", "test", "val", "valid", "validation"}
_EXPECTED = ("a folder with one sub-folder of images per class (root/<split>/<class>/*.png or "
             "root/<class>/*.png), two domains root/<split>A/ and root/<split>B/ (classes A and B), or an "
             "MNIST-style .npz file (x_train, y_train, x_test, y_test, or x, y)")


def _class_order(names: list[str]) -> list[str]:
    """Sorted names; numerically when every name is an integer ('2' before '10')."""
    try:
        return sorted(names, key=int)
    except ValueError:
        return sorted(names)


def _scan_folders(root: Path, split: str, problems: list | None = None) -> tuple[list[Path], np.ndarray, list[str]]:
    """Files, class indices and class names of root/<split>/<class>/ (or root/<class>/ without that folder); an
    unpaired root (root/<split>A/ and root/<split>B/, CycleGAN's layout) gives the two domains as classes A and B."""
    if not (root / split).is_dir() and (root / f"{split}A").is_dir() and (root / f"{split}B").is_dir():
        files, labels = [], []
        for k, name in enumerate(("A", "B")):
            found = _images(root / f"{split}{name}", f"images of domain {name}", problems)
            files += found
            labels += [k] * len(found)
        return files, np.asarray(labels, dtype=np.int64), ["A", "B"]
    folder = root / split if (root / split).is_dir() else root
    names = _class_order([d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")])
    if folder == root and names and set(names) <= _SPLIT_NAMES:
        raise DataError(f"{root} has no '{split}' folder (it has {', '.join(names)}); choose one with data.split")
    if len(names) < 2:
        raise DataError(f"{folder} has {len(names)} class sub-folder(s) ({', '.join(names) or 'none'}); a labeled "
                        "data set needs at least 2: one sub-folder of images per class")
    files, labels = [], []
    for k, name in enumerate(names):
        found = _images(folder / name, f"images of class '{name}' (an empty class folder is an error)", problems)
        files += found
        labels += [k] * len(found)
    return files, np.asarray(labels, dtype=np.int64), names


def _load_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Images as stored (N, H, W[, C]), class indices, class names, and the split's tag for ``path``."""
    if path.suffix.lower() != ".npz":
        raise DataError(f"data root {path} is a file but not an .npz; expected {_EXPECTED}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = sorted(npz.files)
            if f"x_{split}" in keys and f"y_{split}" in keys:
                x_key, y_key, tag = f"x_{split}", f"y_{split}", split
            elif "x" in keys and "y" in keys:
                x_key, y_key, tag = "x", "y", "x"
            else:
                raise DataError(f"{path} has no arrays for split '{split}': expected x_{split} and y_{split} "
                                f"(or a plain x and y); it has {', '.join(keys) or 'no arrays'}")
            x, y = npz[x_key], npz[y_key]
            # Labels of every split define the classes, so "3" has the same index in train and test.
            all_y = [npz[k] for k in keys if k == "y" or k.startswith("y_")]
            names = npz["class_names"] if "class_names" in keys else None
    except DataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, OSError, ValueError (object arrays) ...
        raise DataError(f"cannot read {path}: {exc}") from exc
    where = f"{path}:{x_key}"
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 2, 3, 4)):
        raise DataError(f"{where} has shape {x.shape}; expected (N, H, W) or (N, H, W, C) images")
    if x.dtype not in (np.uint8, np.uint16) and x.dtype.kind != "f":
        raise DataError(f"{where} has dtype {x.dtype}; expected uint8 (0..255), uint16 or float in [0, 1]")
    if x.dtype.kind == "f" and x.size and (x.min() < 0 or x.max() > 1):
        raise DataError(f"{where} holds floats in [{x.min():g}, {x.max():g}]; expected [0, 1] (or store uint8)")
    y = _integer_labels(y, f"{path}:{y_key}")
    if len(y) != len(x):
        raise DataError(f"{path}: {x_key} has {len(x)} images but {y_key} has {len(y)} labels")
    if names is not None:
        names = [str(n) for n in names.reshape(-1)]
        if len(y) and (y.min() < 0 or y.max() >= len(names)):
            raise DataError(f"{path}:{y_key} has labels in [{y.min()}, {y.max()}] but class_names has "
                            f"{len(names)} entries: labels must index class_names")
        return x, y, names, tag
    values = np.unique(np.concatenate([_integer_labels(a, f"{path}:labels") for a in all_y]))
    return x, np.searchsorted(values, y).astype(np.int64), [str(v) for v in values], tag


def _integer_labels(y: np.ndarray, where: str) -> np.ndarray:
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise DataError(f"{where} has shape {y.shape}; expected one integer class label per image (N,)")
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64)
    raise DataError(f"{where} holds {y.dtype} labels that are not integers; expected integer class labels")


def _check_limit(limit: Any) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0):
        raise RecipeError("limit must be a positive integer or null", key="data.limit", value=limit)


UNLABELED = -1  # ``y`` of an item whose label is not used (semi-supervised training)


def check_label_subset(labeled_fraction: Any = None, labels_per_class: Any = None, label_seed: Any = 0) -> None:
    """Recipe-time checks of the labeled-subset options (RecipeError naming the data.* key)."""
    if labeled_fraction is not None and labels_per_class is not None:
        raise RecipeError("give either labeled_fraction or labels_per_class, not both", key="data.labels_per_class",
                          value=labels_per_class)
    fraction_ok = isinstance(labeled_fraction, (int, float)) and not isinstance(labeled_fraction, bool)
    if labeled_fraction is not None and not (fraction_ok and 0 < labeled_fraction <= 1):
        raise RecipeError("must be a fraction in (0, 1] of each class's images (0.01 = 1%), or null for all labels",
                          key="data.labeled_fraction", value=labeled_fraction)
    if labels_per_class is not None and (isinstance(labels_per_class, bool) or not isinstance(labels_per_class, int)
                                         or labels_per_class <= 0):
        raise RecipeError("must be a positive integer (labeled images per class; 10 gives MNIST's 100-label "
                          "setting), or null for all labels", key="data.labels_per_class", value=labels_per_class)
    if isinstance(label_seed, bool) or not isinstance(label_seed, int):
        raise RecipeError("must be an integer (the seed that picks the labeled subset)", key="data.label_seed",
                          value=label_seed)


def labeled_subset(labels: np.ndarray, num_classes: int, *, labeled_fraction: float | None = None,
                   labels_per_class: int | None = None, label_seed: int = 0) -> np.ndarray | None:
    """Sorted indices of the images that keep their labels, or None for all of them. Per class: the first
    ``labels_per_class`` (or ``round(labeled_fraction * n_class)``, at least 1) of a permutation drawn from
    ``label_seed`` and the class index, so the subset depends on the labels and the seed only."""
    check_label_subset(labeled_fraction, labels_per_class, label_seed)
    if labeled_fraction is None and labels_per_class is None:
        return None
    chosen = []
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        n = labels_per_class if labels_per_class is not None else max(1, round(labeled_fraction * len(members)))
        if n > len(members):
            raise DataError(f"class {k} has {len(members)} image(s), fewer than data.labels_per_class={n}; use at "
                            f"most {len(members)} or data.labeled_fraction")
        chosen.append(np.random.default_rng([label_seed, k]).permutation(members)[:n])
    return np.sort(np.concatenate(chosen))


@DATASETS.register("labeled")
class LabeledImages(FolderDataset):
    """Class-labeled images from class folders or an MNIST-style .npz -> real, y, path.

    ``on_error`` (folders): unusable image files are left out (``skip``) or stop the build (``fail``), as in the
    folder data sets; a class left without a usable image is an error. ``limit`` picks from the usable files.
    """

    def __init__(self, *, root: str, split: str = "train", channels: int = 1, size: int = 32,
                 load_size: int | None = None, flip: bool = False, transforms: list | None = None,
                 cache: bool = True, demo: str | None = None, limit: int | None = None, on_error: OnError = "skip",
                 labeled_fraction: float | None = None, labels_per_class: int | None = None, label_seed: int = 0,
                 mask: dict | None = None):
        _check_limit(limit)
        check_label_subset(labeled_fraction, labels_per_class, label_seed)
        super().__init__(root=root, size=size, load_size=load_size, flip=flip, transforms=transforms, cache=cache,
                         demo=demo, channels=self._channels(dict(channels=channels)), on_error=on_error, mask=mask)
        if not self.root.exists():
            raise DataError(f"data root {self.root} does not exist; expected {_EXPECTED}")
        self.split = split
        if self.root.is_file():
            # The arrays stay in memory as loaded; items index them (no per-item copies, shared by forked workers).
            self.images, labels, self.class_names, self._tag = _load_npz(self.root, split)
            self.files = None
        else:
            files, labels, self.class_names = _scan_folders(self.root, split, self._listing)
            keep = np.asarray(self._screen([(p,) for p in files]), dtype=bool)
            empty = [name for k, name in enumerate(self.class_names) if not keep[labels == k].any()]
            if empty:
                raise DataError(f"class(es) {', '.join(empty)} under {self.root} have no usable image left (every "
                                "file was left out: see the warnings above); a labeled data set needs images in "
                                "every class folder")
            self.files, labels = [p for p, k in zip(files, keep) if k], labels[keep]
        source = np.arange(len(labels))
        if limit is not None:
            source = np.sort(np.random.default_rng(LIMIT_SEED).permutation(len(labels))[:limit])
        self._source = source  # item index -> index into files / the npz arrays
        self.labels = labels[source]
        self.num_classes = len(self.class_names)
        if self.num_classes < 2:
            raise DataError(f"{self.root} defines {self.num_classes} class(es); a labeled data set needs at least 2")
        # semi-supervised: the items that keep their labels (None: all)
        self.labeled_index = labeled_subset(self.labels, self.num_classes, labeled_fraction=labeled_fraction,
                                            labels_per_class=labels_per_class, label_seed=label_seed)
        self._labeled = None
        if self.labeled_index is not None:
            self._labeled = np.zeros(len(self.labels), dtype=bool)
            self._labeled[self.labeled_index] = True

    @classmethod
    def channels_from_config(cls, **kwargs: Any) -> dict[str, int]:
        _check_limit(kwargs.get("limit"))
        check_label_subset(kwargs.get("labeled_fraction"), kwargs.get("labels_per_class"), kwargs.get("label_seed", 0))
        return super().channels_from_config(**kwargs)

    @classmethod
    def _layout(cls, root: Path, args: dict[str, Any]) -> None:
        if not root.exists():
            raise DataError(f"data root {root} does not exist; expected {_EXPECTED}")
        if not root.is_file():
            _scan_folders(root, args["split"], [])
            return
        if root.suffix.lower() != ".npz":
            raise DataError(f"data root {root} is a file but not an .npz; expected {_EXPECTED}")
        split = args["split"]
        try:
            with np.load(root, allow_pickle=False) as npz:  # the archive's list of arrays; none is read
                keys = sorted(npz.files)
        except Exception as exc:  # zipfile.BadZipFile, OSError ...
            raise DataError(f"cannot read {root}: {exc}") from exc
        if not ({f"x_{split}", f"y_{split}"} <= set(keys) or {"x", "y"} <= set(keys)):
            raise DataError(f"{root} has no arrays for split '{split}': expected x_{split} and y_{split} "
                            f"(or a plain x and y); it has {', '.join(keys) or 'no arrays'}")

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real": args["channels"]}

    def __len__(self) -> int:
        return len(self.labels)

    def _item(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor | str]:
        out = self._image(index, rng)
        if self._labeled is None:
            out["y"] = torch.tensor(int(self.labels[index]), dtype=torch.int64)
            return out
        out["y"] = torch.tensor(int(self.labels[index]) if self._labeled[index] else UNLABELED, dtype=torch.int64)
        partner = int(self.labeled_index[rng.integers(len(self.labeled_index))])
        out["real_labeled"] = self._image(partner, rng)["real"]
        out["y_labeled"] = torch.tensor(int(self.labels[partner]), dtype=torch.int64)
        return out

    def _image(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor | str]:
        source = int(self._source[index])
        if self.files is not None:
            path = self.files[source]
            array = self._read(path)
        else:
            path = f"{self.root}#{self._tag}/{source}"
            image = self.images[source]
            array = to_float(image[..., None] if image.ndim == 2 else image)
        return self._finish({"real": self._adapt(array, "real", path, "channels")}, rng, {"path": path})


def load_labeled_arrays(root: str, split: str, channels: int, size: int) -> tuple[torch.Tensor, torch.Tensor, list]:
    """A whole split without augmentation (resize only): images (N, C, size, size) in [-1, 1], labels, names.

    An .npz is resized in vectorised chunks (bilinear, antialiased); folders go through ``LabeledImages``.
    """
    LabeledImages.channels_from_config(root=root, channels=channels, size=size)  # argument checks
    path = Path(root)
    if not path.is_file():
        ds = LabeledImages(root=root, split=split, channels=channels, size=size, cache=False)
        images = torch.stack([ds[(i, 0)]["real"] for i in range(len(ds))])  # never empty: no empty class folders
        return images, torch.from_numpy(ds.labels), ds.class_names
    x, labels, names, _ = _load_npz(path, split)
    out = torch.empty(len(x), channels, size, size)
    for start in range(0, len(x), 2048):
        chunk = to_float(x[start:start + 2048])
        n, h, w = chunk.shape[:3]
        chunk = chunk.reshape(n * h, w, -1)  # adapt_channels works on the last axis of an HWC array
        try:
            chunk = adapt_channels(chunk, channels)
        except ValueError:
            raise DataError(f"{path} images have {chunk.shape[2]} channels; channels={channels} cannot be made "
                            "from them (1<->3 and dropping alpha are automatic)") from None
        batch = torch.from_numpy(np.ascontiguousarray(chunk.reshape(n, h, w, channels))).permute(0, 3, 1, 2)
        if (h, w) != (size, size):
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + n] = batch.clamp(0, 1) * 2 - 1
    return out, torch.from_numpy(labels), names
