"""Soak: train a tiny recipe for many thousands of steps with frequent checkpoints, and watch memory and files.

A leak shows as resident memory (RSS) or open file descriptors that keep growing with steps. This trains a tiny
pix2pix (U-Net + PatchGAN, 32 px, on generated photo-like crops in a temporary folder) through the real CLI
path, checkpointing every ``--checkpoint-every`` steps (keeping 2), logging and sampling as a real run does,
while a thread samples the process's RSS and open descriptors.

    python benchmarks/soak.py                 # 6000 steps (about 2 minutes on 2 idle cores)
    python benchmarks/soak.py --steps 20000

Prints a table of RSS and descriptors over the run; the last line is JSON with the growth over the second half
(``rss_growth_mb_per_1k_steps``), which should be near 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from i2i.cli import main as cli  # noqa: E402
from tests.recipes import tiny_pix2pix  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def make_data(root: Path, n: int = 24) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.random((5, 5, 3))
        rgb = np.kron(base, np.ones((8, 8, 1)))[:40, :40] * 200 + rng.random((40, 40, 3)) * 55
        rgb = rgb.astype(np.uint8)
        for side, img in (("A", Image.fromarray(rgb).convert("L")), ("B", Image.fromarray(rgb))):
            (root / "train" / side).mkdir(parents=True, exist_ok=True)
            img.save(root / "train" / side / f"{i:03d}.png")


def recipe(root: Path, out: Path, steps: int, checkpoint_every: int) -> dict:
    """The test suite's tiny pix2pix, with batch 4, a loader worker, EMA and TensorBoard, as a real run has."""
    r = tiny_pix2pix(root, out, max_steps=steps, log_every=100, sample_every=500, checkpoint_every=checkpoint_every,
                     keep_checkpoints=2, tensorboard=True)
    r["name"] = "soak"
    r["data"].update(batch_size=4, num_workers=1)
    r["ema"] = {"decay": 0.999}
    r.pop("schedule")
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between RSS samples")
    args = p.parse_args()
    import yaml
    samples: list[tuple[float, float, int, int]] = []  # (time, rss MB, fds, step)
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_data(tmp / "data")
        run = tmp / "run"
        path = tmp / "soak.yaml"
        path.write_text(yaml.safe_dump(recipe(tmp / "data", run, args.steps, args.checkpoint_every)))

        def step_now() -> int:
            try:
                lines = (run / "log.jsonl").read_text().splitlines()
                return max(json.loads(x).get("step", 0) for x in lines if x.strip())
            except (OSError, ValueError):
                return 0

        def watch() -> None:
            while not stop.is_set():
                samples.append((time.perf_counter(), rss_mb(), open_fds(), step_now()))
                stop.wait(args.interval)

        t0 = time.perf_counter()
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        code = cli(["train", str(path)])
        stop.set()
        thread.join()
        seconds = time.perf_counter() - t0
        checkpoints = sorted(q.name for q in (run / "checkpoints").glob("step_*"))
    if code != 0:
        sys.exit(f"training failed with exit code {code}")
    logged = [s for s in samples if s[3] > 0]
    half = [s for s in logged if s[3] >= args.steps // 2]
    slope = (float(np.polyfit([s[3] for s in half], [s[1] for s in half], 1)[0] * 1000) if len(half) > 2
             else float("nan"))
    print(f"{'step':>7s} {'RSS MB':>8s} {'fds':>5s}")
    for frac in (0.1, 0.25, 0.5, 0.75, 1.0):
        target = args.steps * frac
        s = min(logged, key=lambda x: abs(x[3] - target))
        print(f"{s[3]:7d} {s[1]:8.1f} {s[2]:5d}")
    fds = [s[2] for s in half]
    result = {"steps": args.steps, "seconds": round(seconds, 1),
              "checkpoints_written": args.steps // args.checkpoint_every,
              "checkpoints_kept": checkpoints, "rss_mb_first_logged": round(logged[0][1], 1),
              "rss_mb_half": round(half[0][1], 1), "rss_mb_end": round(half[-1][1], 1),
              "rss_mb_peak": round(max(s[1] for s in samples), 1),
              "rss_growth_mb_per_1k_steps": round(slope, 3), "fds_second_half_min": min(fds),
              "fds_second_half_max": max(fds)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
