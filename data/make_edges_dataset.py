#!/usr/bin/env python
"""Build a paired edges -> photo data set (like pix2pix's edges2shoes) from any folder of photos.

Each photo is center-cropped to a square and resized to SIZE; its edges (Canny on the smoothed gray image,
black lines on white; edges2shoes used HED edges) go on the left, the photo on the right:
DST/train/NAME.png and DST/test/NAME.png, each SIZE x 2*SIZE, for ``paired_folder`` with layout ``aligned``.

    python data/make_edges_dataset.py ../shared/data/horse2zebra/trainA /tmp/edges2horses --size 256
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

try:
    from i2i.data.demo import edge_map
    from i2i.data.io import adapt_channels, list_images, read_image, to_uint8, write_image
    from i2i.errors import DataError
except ImportError:  # run from a checkout without installing: the package sits next to data/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from i2i.data.demo import edge_map
    from i2i.data.io import adapt_channels, list_images, read_image, to_uint8, write_image
    from i2i.errors import DataError


def square(photo: np.ndarray, size: int) -> np.ndarray:
    """Center crop to a square, then resize to size x size (area averaging when shrinking)."""
    h, w = photo.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = photo[top:top + side, left:left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interpolation).reshape(size, size, -1)


def edges(photo: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Black-on-white Canny edges as RGB (the demo data set's edge maps, smoothed more for full-size photos)."""
    return np.repeat(edge_map(photo, sigma), 3, axis=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="folder of photos (searched recursively)")
    parser.add_argument("dst", type=Path, help="output folder; train/ and test/ are created inside")
    parser.add_argument("--size", type=int, default=256, help="side of each half in pixels (default 256)")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="share of photos for test/ (0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split (0)")
    args = parser.parse_args(argv)

    src, dst = args.src.resolve(), args.dst.resolve()
    if not src.is_dir():
        parser.error(f"source folder {args.src} does not exist")
    if dst == src or src in dst.parents:
        parser.error(f"refusing to write into the source folder {args.src}")
    if args.size < 8 or not 0.0 <= args.test_fraction < 1.0:
        parser.error("--size must be >= 8 and --test-fraction in [0, 1)")
    photos = list_images(src)
    if not photos:
        parser.error(f"no images (png, jpg, tif, bmp, webp) under {args.src}")

    order = np.random.default_rng(args.seed).permutation(len(photos))
    test = set(order[: round(len(photos) * args.test_fraction)].tolist())
    written = {"train": 0, "test": 0}
    skipped = 0
    for i, path in enumerate(photos):
        try:
            photo = to_uint8(adapt_channels(read_image(path), 3))
        except (DataError, ValueError) as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            skipped += 1
            continue
        photo = square(photo, args.size)
        split = "test" if i in test else "train"
        # Flattened relative paths keep same-named photos from different subfolders apart.
        name = "_".join(path.relative_to(src).with_suffix(".png").parts)
        write_image(dst / split / name, np.concatenate([edges(photo), photo], axis=1))
        written[split] += 1
    print(f"wrote {written['train']} train and {written['test']} test images ({args.size}x{2 * args.size}) "
          f"to {dst}" + (f"; skipped {skipped} unreadable" if skipped else ""))
    return 0 if sum(written.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
