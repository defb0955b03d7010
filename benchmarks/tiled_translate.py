"""Tiled translation of large images: peak memory (RSS) and time of `translate_folder` with and without tiles.

Workloads (random-weight nets built from the registry or defined below, exported and loaded like any export):

- ``resnet``: CycleGAN's ``resnet_generator`` (base_channels 8, 2 blocks, batch norm) on one 4000x3000 RGB PNG.
- ``sr_x4``: a small ESRGAN-shaped x4 super-resolution net (convs at low resolution, two nearest x2 upsamplings
  with a conv each, a conv at full resolution) on one 1000x750 RGB PNG -> a 4000x3000 output.

Each workload runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own; ``rss_before_mb`` is the
child's RSS after imports and loading the export, and ``peak_extra_mb`` the difference. The input is a photo that
ships with scikit-image, resized (no download). Tiled rows are converted to uint8 as they are finished, so the
float output never exists at full size; the PNG is then encoded from the uint8 array.

    python benchmarks/tiled_translate.py                 # tiled and untiled, both workloads (about 1-2 min on 2 cores)
    python benchmarks/tiled_translate.py --quick         # tiled only
    python benchmarks/tiled_translate.py --device cuda   # also reports peak device memory

Prints a table; the last line is JSON keyed by workload (``resnet_tiled``, ``resnet_untiled``, ``sr_x4_tiled``,
``sr_x4_untiled``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class TinySR(nn.Module):
    """ESRGAN-shaped x4 net at toy width: conv trunk at low resolution, (nearest x2 + conv) x 2, two HR convs."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 16, trunk: int = 3):
        super().__init__()
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, 4
        act = nn.LeakyReLU(0.2, inplace=True)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), act]
        for _ in range(trunk):
            layers += [nn.Conv2d(width, width, 3, padding=1), act]
        for _ in range(2):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1), act]
        layers += [nn.Conv2d(width, width, 3, padding=1), act, nn.Conv2d(width, out_channels, 3, padding=1),
                   nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


WORKLOADS = {
    "resnet": {"net": {"type": "resnet_generator", "in_channels": 3, "out_channels": 3, "base_channels": 8,
                       "blocks": 2, "norm": "batch"}, "size": (3000, 4000), "tile": 512},
    "sr_x4": {"net": {"type": "benchmarks.tiled_translate:TinySR", "width": 16}, "size": (750, 1000),
              "tile": 256},
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_export(folder: Path, net_cfg: dict) -> Path:
    from i2i.inference.export import write_export
    from i2i.nets import build_net
    from i2i.recipe import Recipe
    recipe = Recipe.of({"name": "bench", "model": {"type": "pix2pix"}, "nets": {"g": net_cfg}}, "bench")
    torch.manual_seed(0)
    net = build_net(recipe, "g", file="bench")
    meta = {"model": "pix2pix", "step": 0, "ema": False, "directions": {"AtoB": "g"}, "name": "bench"}
    return write_export(recipe, {"g": net.state_dict()}, folder, meta)


def make_image(path: Path, height: int, width: int) -> None:
    import cv2
    from skimage import data

    from i2i.data.io import write_image
    photo = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)
    write_image(path, photo)


def child(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    from i2i.inference.export import load_export
    from i2i.inference.translate import translate_folder
    if args.threads:
        torch.set_num_threads(args.threads)
    export = load_export(args.export, device=args.device)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    before = rss_mb()
    t0 = time.perf_counter()
    result = translate_folder(export, args.input, args.output, batch_size=args.batch, device=args.device,
                              tile=args.tile, tile_overlap=args.overlap)
    seconds = time.perf_counter() - t0
    if result["failed"]:
        raise SystemExit(f"translate failed: {result['failures']}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = next(Path(args.output).rglob("*.png"))
    from i2i.data.io import read_image
    shape = read_image(out).shape
    figures = {"seconds": round(seconds, 2), "rss_before_mb": round(before), "peak_rss_mb": round(peak),
               "peak_extra_mb": round(peak - before), "output": f"{shape[1]}x{shape[0]}x{shape[2]}",
               "tiled": result["tiled"]}
    if cuda:
        figures["peak_device_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(figures), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiled runs only (skip the untiled baselines)")
    p.add_argument("--workloads", default="resnet,sr_x4")
    p.add_argument("--device", default="cpu")
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--batch", type=int, default=4, help="tiles per forward pass")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--export", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--tile", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="i2i_tiled_bench_") as tmp:
        tmp = Path(tmp)
        for name in args.workloads.split(","):
            w = WORKLOADS[name]
            export = make_export(tmp / f"{name}_export", w["net"])
            (tmp / f"{name}_in").mkdir()
            make_image(tmp / f"{name}_in" / "image.png", *w["size"])
            for mode, tile in (("tiled", w["tile"]), ("untiled", 0))[: 1 if args.quick else 2]:
                cmd = [sys.executable, __file__, "--child", "--export", str(export), "--input",
                       str(tmp / f"{name}_in"), "--output", str(tmp / f"{name}_{mode}"), "--tile", str(tile),
                       "--device", args.device, "--overlap", str(args.overlap), "--batch", str(args.batch),
                       "--threads", str(args.threads)]
                proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT)
                if proc.returncode:
                    results[f"{name}_{mode}"] = {"error": proc.stderr.strip().splitlines()[-1:]}
                    continue
                fig = json.loads(proc.stdout.strip().splitlines()[-1])
                fig.update(input=f"{w['size'][1]}x{w['size'][0]}x3", tile=tile or None, overlap=args.overlap,
                           batch=args.batch, device=args.device)
                results[f"{name}_{mode}"] = fig
    cols = ("input", "output", "tile", "seconds", "rss_before_mb", "peak_rss_mb", "peak_extra_mb", "peak_device_mb")
    print(f"{'workload':16s}" + "".join(f"{c:>15s}" for c in cols))
    for key, fig in results.items():
        print(f"{key:16s}" + "".join(f"{fig.get(c, '-')!s:>15s}" for c in cols))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
