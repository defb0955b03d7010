"""Small real-image demo data sets, built on first use from photos shipped with scikit-image/scikit-learn."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


PAIRED_PLAN = {"train": (("astronaut", "chelsea", "rocket", "motorcycle", "china"), 60, 8),
               "test": (("flower", "coffee"), 12, 4)}  # whole photos held out for test


def _build_paired(root: Path, make_a: Callable[[np.ndarray], np.ndarray]) -> dict[str, int]:
    """Paired data ("folders" layout): <split>/A/*.png = make_a(crop), <split>/B/*.png the RGB crops."""
    rng = np.random.default_rng(0)
    counts = {}
    for split, (photos, full, half) in PAIRED_PLAN.items():
        n = 0
        for name in photos:
            image = _photo(name)
            for tag, crops in ((name, _crops(image, full, rng)), (f"{name}_half", _crops(image, half, rng, 0.5))):
                for k, crop in enumerate(crops):
                    write_image(root / split / "A" / f"{tag}_{k:03d}.png", make_a(crop))
                n += _write_crops(root / split / "B", tag, crops)
        counts[split] = n
    return counts


def build_colorize(root: Path) -> dict[str, int]:
    """Paired gray -> colour ("folders" layout): <split>/A/*.png gray (L), <split>/B/*.png the same crops in RGB."""
    return _build_paired(root, lambda crop: adapt_channels(crop, 1))


def edge_map(photo: np.ndarray, sigma: float = 0.8) -> np.ndarray:
    """Black-on-white Canny edges (H, W, 1) uint8 of the smoothed gray image, as edges2shoes-style sketches; the
    thresholds follow the image's median, which keeps edge density similar across dark and bright photos."""
    gray = adapt_channels(photo, 1)[..., 0]
    smooth = cv2.GaussianBlur(gray, (0, 0), sigma)
    median = float(np.median(smooth))
    lines = cv2.Canny(smooth, int(max(0, 0.66 * median)), int(min(255, 1.33 * median)) or 1)
    return (255 - lines)[..., None]


def build_edges2photo(root: Path) -> dict[str, int]:
    """Paired edges -> photo ("folders" layout): <split>/A/*.png edge sketches (L), <split>/B/*.png the RGB crops.

    Colour and texture are not in the edges: many photos fit one sketch (BicycleGAN's multimodal setting)."""
    return _build_paired(root, edge_map)


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


DIGITS_SOURCES = """scikit-learn's handwritten digits (sklearn.datasets.load_digits): the test set of the UCI
"Optical Recognition of Handwritten Digits" data, 1797 scans of 8x8 pixels with 17 grey levels, 10 classes; the
licence stated there applies. Upscaled 8 -> 24 px (bicubic), contrast-clipped and padded by 4 px to 32x32: a white
digit on black, as in MNIST. About 15% of each class is held out for test (seed 0). Rebuilt by ensure_demo.
"""


def build_digits(root: Path) -> dict[str, int]:
    """Labeled class folders train/<digit>/*.png and test/<digit>/*.png (32x32 gray) for conditional GANs."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(0)
    counts = {"train": 0, "test": 0}
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        n_test = round(0.15 * len(indices))
        for split, chosen in (("test", indices[:n_test]), ("train", indices[n_test:])):
            for i in chosen:
                big = cv2.resize(digits.images[i].astype(np.float32) / 16.0, (24, 24), interpolation=cv2.INTER_CUBIC)
                ink = np.clip((big - 0.1) / 0.7, 0.0, 1.0)  # sharpen the blurry upscale into strokes
                write_image(root / split / str(label) / f"{i:04d}.png", np.pad(np.rint(ink * 255).astype(np.uint8), 4))
            counts[split] += len(chosen)
    (root / "SOURCES.txt").write_text(DIGITS_SOURCES)
    return counts



SR_SOURCES = """HR crops for the super-resolution demo, of photos shipped with scikit-image (skimage.data: astronaut,
chelsea, rocket, stereo_motorcycle; held out for validation: coffee) and scikit-learn (load_sample_images:
china.jpg; held out: flower.jpg), at full resolution and at half resolution (area-averaged, which also smooths
JPEG artefacts). Each image keeps the licence stated in those projects' documentation. Rebuilt by ensure_demo.
"""
SR_TRAIN_PHOTOS = ("astronaut", "chelsea", "rocket", "motorcycle", "china")
SR_VAL_PHOTOS = ("coffee", "flower")  # whole photos held out: no validation crop overlaps a training one


def _sr_crops(image: np.ndarray, count: int, size: int, rng: np.random.Generator,
              scale: float = 1.0) -> list[np.ndarray]:
    """``count`` size x size crops at random positions, after area-resizing the image by ``scale``."""
    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    ys, xs = rng.integers(0, h - size + 1, count), rng.integers(0, w - size + 1, count)
    return [np.ascontiguousarray(image[y:y + size, x:x + size]) for y, x in zip(ys, xs)]


def build_sr(root: Path) -> dict[str, int]:
    """Super-resolution training HR images (LR is made on the fly): 200 RGB crops of 96x96 in one folder."""
    rng = np.random.default_rng(0)
    n = 0
    for name in SR_TRAIN_PHOTOS:
        image = _photo(name)
        n += _write_crops(root, name, _sr_crops(image, 24, 96, rng))
        n += _write_crops(root, f"{name}_half", _sr_crops(image, 16, 96, rng, 0.5))
    (root / "SOURCES.txt").write_text(SR_SOURCES)
    return {"hr": n}


def build_sr_val(root: Path) -> dict[str, int]:
    """Held-out super-resolution HR images: 12 RGB crops of 128x128 of photos never trained on, interleaved by
    name (00_coffee, 00_flower, 01_coffee_half, ...) so that the first few mix both photos and resolutions."""
    rng = np.random.default_rng(1)
    n = 0
    for name in SR_VAL_PHOTOS:
        image = _photo(name)
        for tag, crops in (("", _sr_crops(image, 3, 128, rng)), ("_half", _sr_crops(image, 3, 128, rng, 0.5))):
            for k, crop in enumerate(crops):
                order = 2 * k + (tag == "_half")
                write_image(root / f"{order:02d}_{name}{tag}.png", crop)
                n += 1
    (root / "SOURCES.txt").write_text(SR_SOURCES)
    return {"hr": n}

DEMOS: dict[str, Callable[[Path], dict[str, int]]] = {"colorize": build_colorize, "edges2photo": build_edges2photo,
                                                      "photo2ihc": build_photo2ihc,
                                                      "digits": build_digits, "sr": build_sr, "sr_val": build_sr_val}


def is_complete(root: str | Path) -> bool:
    return (Path(root) / MARKER).is_file()


DEMO_PLACE = ("data", "demo")  # a recipe's demo data set is built on first use only at data/demo/<name>


def is_demo_place(root: str | Path, name: str) -> bool:
    """Whether ``root`` is demo ``name``'s own place, data/demo/<name> (relative, or under any folder): the only
    place a recipe builds it on first use, so that a mistyped data.root is not filled with demo data. Elsewhere
    it is built when asked: ``python -m i2i.data.demo NAME ROOT`` (or ``ensure_demo`` from Python)."""
    return Path(root).parts[-3:] == (*DEMO_PLACE, name)


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
        if not (tmp / "SOURCES.txt").exists():  # a builder may write its own
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


def main(argv: list[str] | None = None) -> int:
    """``python -m i2i.data.demo NAME ROOT``: build a demo data set at ROOT (recipes build theirs only at
    data/demo/NAME)."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(prog="python -m i2i.data.demo", description=main.__doc__)
    parser.add_argument("name", choices=sorted(DEMOS))
    parser.add_argument("root")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="i2i: %(message)s")
    try:
        ensure_demo(args.name, args.root)
    except (DataError, RecipeError) as exc:
        print(f"i2i: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
