"""Images of several domains for multi-domain translation (StarGAN): a folder per domain, or an attribute table.

- Folders (single-label): ``root/<split>/<domain>/*.png`` (or ``root/<domain>/`` without split folders), the
  layout of the ``labeled`` data set and of ``i2i classifier``. Each image is in exactly one domain: the model's
  classification loss is cross-entropy.
- Attribute table (multi-label): ``root/<split>.csv`` with a header ``file,<attr>,<attr>...`` and one row per image:
  its path relative to ``root`` and a 0 or 1 per attribute (CelebA's ``list_attr_celeba.txt`` becomes one by
  mapping -1 to 0). Attributes combine freely: binary cross-entropy per attribute.

The table is used when ``root/<split>.csv`` exists. ``attributes`` picks domains or columns (StarGAN's
``selected_attrs``), in the order given. An item is ``{"real": (C, size, size) in [-1, 1], "label": (K,) float 0/1,
"path": str}`` plus ``"y"`` (int64 domain index) for folders.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, RecipeError
from ..registry import DATASETS
from .folders import FolderDataset, OnError
from .io import show_path
from .labeled import _scan_folders

_EXPECTED = ("one folder of images per domain (root/<split>/<domain>/*.png) or an attribute table root/<split>.csv "
             "(header file,<attr>,...; one row per image: its path relative to root and 0 or 1 per attribute)")
_FORBIDDEN = set("/\\=,")  # names become output folders and `--set name=value` arguments


def check_name(name: str, where: str) -> None:
    """A domain or attribute name usable as a folder name and in ``--set name=1``."""
    if not name.strip() or name in (".", "..") or _FORBIDDEN & set(name) or name != name.strip():
        raise DataError(f"{where}: domain/attribute name {name!r} is not usable: it names output folders and "
                        "`i2i translate --set NAME=1`, so it must be non-empty, without surrounding spaces, not "
                        "'.' or '..', and without / \\ = or ,")


def read_table(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(files relative to the table's folder, attribute names, 0/1 matrix (N, K) float32) of an attribute table."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read the attribute table {show_path(path)}: {exc}") from exc
    rows = [(n, r) for n, r in enumerate(rows, 1) if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{show_path(path)} is empty; expected a header file,<attr>,... and one row per image")
    (_, header), body = rows[0], rows[1:]
    names = [h.strip() for h in header[1:]]
    if not names:
        raise DataError(f"{show_path(path)}: the header {','.join(header)!r} names no attribute; expected "
                        "file,<attr>,<attr>... (the first column holds the image paths)")
    for name in names:
        check_name(name, f"{show_path(path)} header")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{show_path(path)}: attribute(s) {', '.join(twice)} appear twice in the header")
    if not body:
        raise DataError(f"{show_path(path)} has a header but no rows: one row per image is expected")
    files, values = [], np.zeros((len(body), len(names)), dtype=np.float32)
    for i, (line, row) in enumerate(body):
        if len(row) != len(names) + 1:
            raise DataError(f"{show_path(path)} line {line}: {len(row)} fields, expected {len(names) + 1} (the file "
                            f"and one value per attribute: {', '.join(names)})")
        files.append(row[0].strip())
        for k, cell in enumerate(row[1:]):
            if cell.strip() not in ("0", "1"):
                raise DataError(f"{show_path(path)} line {line}, column {names[k]!r}: value {cell!r}; attribute "
                                "values must be 0 or 1 (CelebA's -1 means 0)")
            values[i, k] = float(cell.strip())
    return files, names, values


def _select(names: list[str], wanted: list[str] | None, where: str) -> list[int]:
    """Indices of the ``attributes`` the recipe picks (all when None), in its order."""
    if wanted is None:
        return list(range(len(names)))
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise DataError(f"data.attributes names {', '.join(map(repr, unknown))}, which {where} does not have; "
                        f"valid: {', '.join(names)}")
    return [names.index(w) for w in wanted]


@DATASETS.register("domains")
class DomainImages(FolderDataset):
    """Images of K domains (StarGAN): folders per domain (single-label) or root/<split>.csv (multi-label 0/1
    attributes) -> real, label (K,), path (+ y for folders)."""

    def __init__(self, *, root: str, split: str = "train", channels: int = 3, size: int = 128,
                 load_size: int | None = None, flip: bool = True, transforms: list | None = None,
                 cache: bool = False, demo: str | None = None, attributes: list[str] | None = None,
                 on_error: OnError = "skip"):
        _check_attributes(attributes)
        super().__init__(root=root, size=size, load_size=load_size, flip=flip, transforms=transforms, cache=cache,
                         demo=demo, channels=self._channels(dict(channels=channels)), on_error=on_error)
        if not self.root.is_dir():
            raise DataError(f"data root {self.root} is not a folder; expected {_EXPECTED}")
        self.split, self.table = split, self.root / f"{split}.csv"
        self.multi_label = self.table.is_file()
        if self.multi_label:
            names, files, labels = self._read_table(self.root, self.table, attributes)
        else:
            found, index, all_names = _scan_folders(self.root, split, self._listing)
            for name in all_names:
                check_name(name, f"domain folder under {show_path(self.root)}")
            chosen = _select(all_names, attributes, f"{show_path(self.root)} (its domain folders)")
            names = [all_names[k] for k in chosen]
            if len(names) < 2:
                raise DataError(f"data.attributes picks {len(names)} domain folder(s) under {show_path(self.root)}; "
                                f"translation between domains needs at least 2 of: {', '.join(all_names)}")
            keep_domain = np.isin(index, chosen)
            files = [p for p, k in zip(found, keep_domain) if k]
            labels = np.eye(len(all_names), dtype=np.float32)[index[keep_domain]][:, chosen]
        keep = np.asarray(self._screen([(p,) for p in files]), dtype=bool)
        self.files, self.labels, self.domain_names = [p for p, k in zip(files, keep) if k], labels[keep], names
        if not self.multi_label:
            empty = [n for k, n in enumerate(names) if not self.labels[:, k].any()]
            if empty:
                raise DataError(f"domain(s) {', '.join(empty)} under {show_path(self.root)} have no usable image; "
                                "every domain folder needs images")
            self.y = self.labels.argmax(1).astype(np.int64)
        self.class_names, self.num_classes = names, len(names)

    @staticmethod
    def _read_table(root: Path, table: Path, attributes: list[str] | None) -> tuple[list[str], list[Path], np.ndarray]:
        rel, all_names, values = read_table(table)
        chosen = _select(all_names, attributes, show_path(table))
        files = []
        for line, name in enumerate(rel, 2):
            path = Path(name)
            if not name or path.is_absolute() or ".." in path.parts:
                raise DataError(f"{show_path(table)}: file {name!r} (row {line - 1}) must be a path relative to "
                                f"{show_path(root)}, inside it")
            files.append(root / path)
        return [all_names[k] for k in chosen], files, values[:, chosen]

    @classmethod
    def channels_from_config(cls, **kwargs: Any) -> dict[str, int]:
        _check_attributes(kwargs.get("attributes"))
        return super().channels_from_config(**kwargs)

    @classmethod
    def _layout(cls, root: Path, args: dict[str, Any]) -> None:
        if not root.is_dir():
            raise DataError(f"data root {root} is not a folder; expected {_EXPECTED}")
        table = root / f"{args['split']}.csv"
        if table.is_file():
            cls._read_table(root, table, args.get("attributes"))
        else:
            _select(_scan_folders(root, args["split"], [])[2], args.get("attributes"),
                    f"{show_path(root)} (its domain folders)")

    @classmethod
    def _channels(cls, args: dict[str, Any]) -> dict[str, int]:
        return {"real": args["channels"]}

    def __len__(self) -> int:
        return len(self.files)

    def _item(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor | str]:
        path = self.files[index]
        out = self._finish({"real": self._adapt(self._read(path), "real", path, "channels")}, rng, {"path": path})
        out["label"] = torch.from_numpy(self.labels[index].copy())
        if not self.multi_label:
            out["y"] = torch.tensor(int(self.y[index]), dtype=torch.int64)
        return out


def _check_attributes(attributes: Any) -> None:
    if attributes is not None and (not isinstance(attributes, list) or not attributes
                                   or not all(isinstance(a, str) for a in attributes)
                                   or len(set(attributes)) != len(attributes)):
        raise RecipeError("attributes must be a non-empty list of distinct domain or attribute names (the columns of "
                          "the table, or the domain folders, to use) or null for all", key="data.attributes",
                          value=attributes)


def has_table(root: str | Path, split: str) -> bool:
    """Whether ``root`` holds an attribute table for ``split`` (root/<split>.csv): multi-label data."""
    return (Path(root) / f"{split}.csv").is_file()


def load_attribute_arrays(root: str | Path, split: str, channels: int, size: int,
                          attributes: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """A whole attribute-table split without augmentation (resize only): images (N, C, size, size) in [-1, 1],
    0/1 attributes (N, K) float, attribute names (``attributes`` picks and orders them, as ``data.attributes``)."""
    if not has_table(root, split):
        raise DataError(f"{show_path(Path(root) / f'{split}.csv')} does not exist: multi-label (attribute) images "
                        f"of split '{split}' come from an attribute table root/<split>.csv (header file,<attr>,...)")
    ds = DomainImages(root=str(root), split=split, channels=channels, size=size, flip=False, attributes=attributes)
    if not len(ds):
        raise DataError(f"{show_path(ds.table)} lists no usable image")
    images = torch.stack([ds[(i, 0)]["real"] for i in range(len(ds))])
    return images, torch.from_numpy(ds.labels), list(ds.domain_names)
