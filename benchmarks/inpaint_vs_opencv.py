"""Inpainting exports against OpenCV's classical inpainting, in the same run, on the same held-out photos and holes.

    python benchmarks/inpaint_vs_opencv.py --export runs/demo_context_encoder [--export runs/demo_ccgan] \
        [--data ../shared/data/T91] [--size 128] [--mask center] [--max-images 91] [--device cpu]

Every photo under --data (its test/ folder when it has one) is resized to --size x --size, given the same hole
(--mask: center = the central square of half the side, blocks or strokes seeded per image), and filled by each
export, by cv2.inpaint with Telea's method and with Navier-Stokes (radius --radius). Scored on 8-bit images inside
the hole: PSNR (dB), SSIM and L1 (i2i/evaluation/inpaint_scoring.py). CPU time is the process time of each method's
filling pass alone (for a net on a GPU, the host's share of that pass). Note: a CCGAN export also sees a
low-resolution copy of the whole image, hole included, so it is not a context-only method as the others are.
Prints a table; the last line is JSON keyed by method.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from i2i.evaluation.inpaint_scoring import fill_batch, hole_figures, load_eval_images, opencv_fill, to_uint8
from i2i.inference.export import load_export
from i2i.inference.inpaint import export_filler


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", action="append", required=True, help="inpainting export or run folder (repeatable)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "T91"), help="held-out photos")
    p.add_argument("--split", default="test", help="sub-folder of --data used when it exists")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--mask", default="center", choices=["center", "blocks", "strokes"])
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--radius", type=int, default=3, help="cv2.inpaint's neighbourhood radius (px)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not Path(args.data).is_dir():
        print(f"skipped: {args.data} not found (pass --data)")
        print(json.dumps({}))
        return
    mask = {"type": "center", "size": 0.5} if args.mask == "center" else {"type": args.mask}
    images, masks = load_eval_images(args.data, args.split, 3, args.size, mask, args.max_images, args.seed)
    real, holes = to_uint8(images), masks[:, 0].numpy()
    results: dict[str, dict] = {}
    for method in ("telea", "ns"):
        filled, wall, cpu = _timed(lambda m=method: opencv_fill(real, holes, m, args.radius))
        results[f"opencv_{method}"] = {**hole_figures(filled, real, holes), "seconds": wall, "cpu_seconds": cpu}
    for path in args.export:
        export = load_export(path, device=args.device)
        filler, _, _ = export_filler(export)
        fill = lambda x, m, f=filler: f.g(f.build(x, m))  # noqa: E731
        fill_batch(fill, images[:2], masks[:2], args.device)  # warm-up: first-call allocations are not the method's
        filled, wall, cpu = _timed(lambda f=fill: fill_batch(f, images, masks, args.device))
        name = f"{export.meta.get('model')}:{Path(path).name}"
        results[name] = {**hole_figures(filled, real, holes), "seconds": wall, "cpu_seconds": cpu,
                         "step": export.meta.get("step")}
    n = len(images)
    print(f"{n} photos of {args.data} at {args.size} px, mask {args.mask}, hole fraction "
          f"{float(holes.mean()):.3f}, device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'method':<40}{'PSNR':>8}{'SSIM':>8}{'L1':>8}{'wall s':>9}{'CPU s':>9}")
    for name, r in results.items():
        print(f"{name:<40}{r['hole_psnr']:>8.2f}{r['hole_ssim']:>8.4f}{r['hole_l1']:>8.4f}{r['seconds']:>9.2f}"
              f"{r['cpu_seconds']:>9.2f}")
    print(json.dumps({"data": args.data, "images": n, "size": args.size, "mask": args.mask, "results": results}))


if __name__ == "__main__":
    main()
