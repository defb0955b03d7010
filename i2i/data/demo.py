"""Small real-image demo data sets, built on first use from photos shipped with scikit-image/scikit-learn."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..errors import DataError, RecipeError
from .io import adapt_channels, write_image

log = logging.getLogger("i2i")

MARKER = ".i2i_demo.json"  # written last: its presence means the folder is complete
CROP = 72  # load_size 72 with random 64x64 crops in the demo recipes
SOURCES = """Crops of photos shipped with scikit-image (skimage.data: astronaut, chelsea, coffee, rocket,
stereo_motorcycle, immunohistochemistry) and scikit-learn (load_sample_images: china.jpg, flower.jpg).
Each image keeps the licence stated in those projects' documentation. Rebuilt by i2i.data.demo.ensure_demo.
"""


def _photo(name: str) -> np.ndarray:
    """One RGB uint8 photo by name; all load offline from the installed packages."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        return load_sample_image(f"{name}.jpg")
    import skimage.data
    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def _crops(image: np.ndarray, count: int, rng: np.random.Generator, scale: float = 1.0) -> list[np.ndarray]:
    """``count`` CROP x CROP crops at random positions, after resizing the image by ``scale``."""
    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    ys, xs = rng.integers(0, h - CROP + 1, count), rng.integers(0, w - CROP + 1, count)
    return [image[y:y + CROP, x:x + CROP] for y, x in zip(ys, xs)]


def _write_crops(folder: Path, stem: str, crops: list[np.ndarray], channels: int = 3) -> int:
    for k, crop in enumerate(crops):
        write_image(folder / f"{stem}_{k:03d}.png", adapt_channels(crop, channels))
    return len(crops)


def build_colorize(root: Path) -> dict[str, int]:
    """Paired gray -> colour ("folders" layout): <split>/A/*.png gray (L), <split>/B/*.png the same crops in RGB."""
    rng = np.random.default_rng(0)
    plan = {"train": (("astronaut", "chelsea", "rocket", "motorcycle", "china"), 60, 8),
            "test": (("flower", "coffee"), 12, 4)}  # whole photos held out for test
    counts = {}
    for split, (photos, full, half) in plan.items():
        n = 0
        for name in photos:
            image = _photo(name)
            for tag, crops in ((name, _crops(image, full, rng)), (f"{name}_half", _crops(image, half, rng, 0.5))):
                _write_crops(root / split / "A", tag, crops, channels=1)
                n += _write_crops(root / split / "B", tag, crops)
        counts[split] = n
    return counts


def build_photo2ihc(root: Path) -> dict[str, int]:
    """Unpaired photos <-> immunohistochemistry stains: trainA/, trainB/, testA/, testB/ of RGB crops."""
    rng = np.random.default_rng(0)
    counts = {"trainA": 0, "testA": 0}
    for split, photos, full, half in (("trainA", ("astronaut", "chelsea", "rocket", "motorcycle", "china"), 44, 8),
                                      ("testA", ("flower", "coffee"), 10, 2)):
        for name in photos:
            image = _photo(name)
            counts[split] += _write_crops(root / split, name, _crops(image, full, rng))
            counts[split] += _write_crops(root / split, f"{name}_half", _crops(image, half, rng, 0.5))
    # One stained slide: the bottom rows are held out so test crops never overlap training crops.
    ihc = _photo("immunohistochemistry")
    train, test = ihc[:400], ihc[400:]
    counts["trainB"] = (_write_crops(root / "trainB", "ihc", _crops(train, 180, rng))
                        + _write_crops(root / "trainB", "ihc_half", _crops(train, 40, rng, 0.5)))
    counts["testB"] = _write_crops(root / "testB", "ihc", _crops(test, 24, rng))
    return counts


DEMOS: dict[str, Callable[[Path], dict[str, int]]] = {"colorize": build_colorize, "photo2ihc": build_photo2ihc}


def is_complete(root: str | Path) -> bool:
    return (Path(root) / MARKER).is_file()


def ensure_demo(name: str, root: str | Path) -> None:
    """Build demo ``name`` at ``root`` unless it is already there; safe when several processes race."""
    if name not in DEMOS:
        raise RecipeError("unknown demo data set", key="data.demo", value=name, choices=DEMOS)
    root = Path(root)
    if is_complete(root):
        return
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DataError(f"{root} exists but is not a complete '{name}' demo data set (no {MARKER}); "
                        "remove it or choose another data.root")
    root.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename into place: readers never see a half-built folder.
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        start = time.perf_counter()
        log.info("building demo data set '%s' in %s", name, root)
        counts = DEMOS[name](tmp)
        (tmp / "SOURCES.txt").write_text(SOURCES)
        (tmp / MARKER).write_text(json.dumps({"demo": name, "counts": counts}, indent=1))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        try:
            os.replace(tmp, root)
        except OSError:
            if not is_complete(root):  # not just "another process finished first"
                raise
        log.info("demo data set '%s' ready (%s) in %.1f s", name, counts, time.perf_counter() - start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
