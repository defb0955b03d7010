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


def _digit_splits():
    """(split, label, index, 32x32 uint8 image) of scikit-learn's digits, as DIGITS_SOURCES says (test first)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(0)
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        n_test = round(0.15 * len(indices))
        for split, chosen in (("test", indices[:n_test]), ("train", indices[n_test:])):
            for i in chosen:
                big = cv2.resize(digits.images[i].astype(np.float32) / 16.0, (24, 24), interpolation=cv2.INTER_CUBIC)
                ink = np.clip((big - 0.1) / 0.7, 0.0, 1.0)  # sharpen the blurry upscale into strokes
                yield split, label, i, np.pad(np.rint(ink * 255).astype(np.uint8), 4)


def build_digits(root: Path) -> dict[str, int]:
    """Labeled class folders train/<digit>/*.png and test/<digit>/*.png (32x32 gray) for conditional GANs."""
    counts = {"train": 0, "test": 0}
    for split, label, i, image in _digit_splits():
        write_image(root / split / str(label) / f"{i:04d}.png", image)
        counts[split] += 1
    (root / "SOURCES.txt").write_text(DIGITS_SOURCES)
    return counts


DIGITS_PAIR_SOURCES = """Two domains of handwritten digits for coupled GANs (CoGAN), in the manner of MNIST vs MNIST-M:
scikit-learn's digits as the 'digits' demo renders them (32x32, white on black), split into two disjoint halves
so that no digit appears in both domains and no pair is ever seen (the generator must learn the correspondence):
- A (trainA/<digit>/, testA/<digit>/): the plain gray digits, every other image of each class;
- B (trainB/<digit>/, testB/<digit>/): the other images, MNIST-M style: |photo crop - digit| per colour channel,
  with 32x32 crops of photos shipped with scikit-image (astronaut, chelsea, rocket, stereo_motorcycle; test:
  coffee) and scikit-learn (china.jpg; test: flower.jpg), at a quarter of their size.
classes/train/<digit>/ and classes/test/<digit>/ hold both domains' images by digit, for the evaluation
classifier (`i2i classifier data/demo/digits_pair/classes --channels 3`). The licences stated in those projects'
documentation apply. Rebuilt by i2i.data.demo.ensure_demo.
"""


def build_digits_pair(root: Path) -> dict[str, int]:
    """Unpaired digits (A, gray) and photo-textured digits (B, RGB) for CoGAN: see DIGITS_PAIR_SOURCES."""
    rng = np.random.default_rng(0)
    textures = {split: [cv2.resize(_photo(n), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA) for n in names]
                for split, names in (("train", ("astronaut", "chelsea", "rocket", "motorcycle", "china")),
                                     ("test", ("coffee", "flower")))}
    counts: dict[str, int] = {}
    seen: dict[tuple[str, int], int] = {}
    for split, label, i, digit in _digit_splits():
        k = seen[(split, label)] = seen.get((split, label), -1) + 1
        domain = "AB"[k % 2]
        if domain == "A":
            image = digit
        else:
            photo = textures[split][int(rng.integers(len(textures[split])))]
            y, x = rng.integers(0, photo.shape[0] - 32 + 1), rng.integers(0, photo.shape[1] - 32 + 1)
            image = np.abs(photo[y:y + 32, x:x + 32].astype(np.int16) - digit[..., None]).astype(np.uint8)
        write_image(root / f"{split}{domain}" / str(label) / f"{i:04d}.png", image)
        write_image(root / "classes" / split / str(label) / f"{domain}_{i:04d}.png", image)
        counts[f"{split}{domain}"] = counts.get(f"{split}{domain}", 0) + 1
    (root / "SOURCES.txt").write_text(DIGITS_PAIR_SOURCES)
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

DOMAINS_SOURCES = """Four photographic domains for the multi-domain translation (StarGAN) demo: crops of 72 px of
images shipped with scikit-image and scikit-learn, one folder per domain (train/<domain>/, test/<domain>/).
- photo: natural photos, skimage.data astronaut, chelsea, rocket, stereo_motorcycle and scikit-learn's china.jpg
  (test: the whole photos skimage.data coffee and scikit-learn's flower.jpg);
- ihc: skimage.data.immunohistochemistry, a stained tissue slide seen through a microscope;
- retina: skimage.data.retina, a fundus photograph of a retina (crops inside the disc, at 0.3 of full size);
- space: skimage.data.hubble_deep_field, the Hubble eXtreme Deep Field.
For ihc, retina and space the bottom rows are held out for test, so no test crop overlaps a training crop. Each
domain has 200 training and 24 test crops; photo, ihc and space mix full and half resolution (area-averaged).
Each image keeps the licence stated in those projects' documentation. Rebuilt by i2i.data.demo.ensure_demo.
"""


def build_domains(root: Path) -> dict[str, int]:
    """Four real photographic domains (photo, ihc, retina, space) as domain folders for StarGAN: see
    DOMAINS_SOURCES."""
    rng = np.random.default_rng(0)
    counts = {}

    def write(split: str, domain: str, stem: str, crops: list[np.ndarray]) -> None:
        counts[f"{split}/{domain}"] = counts.get(f"{split}/{domain}", 0) + _write_crops(root / split / domain, stem,
                                                                                          crops)
    for name in ("astronaut", "chelsea", "rocket", "motorcycle", "china"):
        image = _photo(name)
        write("train", "photo", name, _crops(image, 32, rng))
        write("train", "photo", f"{name}_half", _crops(image, 8, rng, 0.5))
    for name in ("coffee", "flower"):
        image = _photo(name)
        write("test", "photo", name, _crops(image, 10, rng))
        write("test", "photo", f"{name}_half", _crops(image, 2, rng, 0.5))
    ihc = _photo("immunohistochemistry")  # 512 x 512: rows 400+ held out
    write("train", "ihc", "ihc", _crops(ihc[:400], 160, rng))
    write("train", "ihc", "ihc_half", _crops(ihc[:400], 40, rng, 0.5))
    write("test", "ihc", "ihc", _crops(ihc[400:], 24, rng))
    retina = cv2.resize(_photo("retina"), None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)  # 423 px
    disc = retina[66:356, 66:356]  # the square inside the fundus disc (radius ~207 px around the centre)
    write("train", "retina", "retina", _crops(disc[:210], 200, rng))
    write("test", "retina", "retina", _crops(disc[210:], 24, rng))
    space = _photo("hubble_deep_field")  # 872 x 1000: rows 700+ held out
    write("train", "space", "space", _crops(space[:700], 160, rng))
    write("train", "space", "space_half", _crops(space[:700], 40, rng, 0.5))
    write("test", "space", "space", _crops(space[700:], 24, rng))
    (root / "SOURCES.txt").write_text(DOMAINS_SOURCES)
    return counts


PHOTOS_SOURCES = """Photos for the inpainting demos: crops of 96 px of photos shipped with scikit-image (skimage.data:
astronaut, chelsea, rocket, stereo_motorcycle; held out for test: coffee) and scikit-learn (load_sample_images:
china.jpg; held out: flower.jpg), at full resolution and at half resolution (area-averaged). train/ has 450 crops,
test/ 24 of the two held-out photos only. Each image keeps the licence stated in those projects' documentation.
Rebuilt by i2i.data.demo.ensure_demo.
"""


def build_photos(root: Path) -> dict[str, int]:
    """Single-folder RGB photo crops for inpainting (the holes are drawn by data.mask): train/*.png, test/*.png."""
    rng = np.random.default_rng(0)
    counts = {"train": 0, "test": 0}
    for split, photos, full, half in (("train", SR_TRAIN_PHOTOS, 60, 30), ("test", SR_VAL_PHOTOS, 6, 6)):
        for name in photos:
            image = _photo(name)
            counts[split] += _write_crops(root / split, name, _sr_crops(image, full, 96, rng))
            counts[split] += _write_crops(root / split, f"{name}_half", _sr_crops(image, half, 96, rng, 0.5))
    (root / "SOURCES.txt").write_text(PHOTOS_SOURCES)
    return counts


DEMOS: dict[str, Callable[[Path], dict[str, int]]] = {"colorize": build_colorize, "edges2photo": build_edges2photo,
                                                      "photo2ihc": build_photo2ihc,
                                                      "digits": build_digits, "sr": build_sr, "sr_val": build_sr_val,
                                                      "domains": build_domains}
DEMOS["photos"] = build_photos  # inpainting (context_encoder, ccgan)
DEMOS["digits_pair"] = build_digits_pair  # coupled GANs (cogan)


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
