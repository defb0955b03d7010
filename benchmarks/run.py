"""CPU speed benchmarks in one run: machine ceiling, training steps, translate, tiled translate, data loading, memory.

    python benchmarks/run.py            # full: about 29 min on 2 idle cores (20 timed steps in 2 repeats)
    python benchmarks/run.py --quick    # about 9 min on 2 idle cores (fewer steps, 1 repeat: noisier)
    python benchmarks/run.py --smoke    # every workload once at toy sizes: checks the script, figures meaningless
    python benchmarks/run.py --only cyclegan_128,translate_pix2pix_256   # a subset, by workload name

Every workload runs in a fresh child process (``--child``), so its ``peak_rss_mb`` (VmHWM) is its own. Training
workloads run i2i's step the way ``Trainer.fit`` runs it (Accelerate on the CPU, ``speed_options``,
``build_optimizers``, ``TrainContext``, autocast, schedulers) on random batches, so data loading is excluded.
Each is compared with a baseline measured in the same run: the same nets, losses and batch in a loop written as
the reference implementation does it (``benchmarks/reference.py``), and with the fixed reference figures
below. FLOPs per step come from ``torch.utils.flop_counter`` (matmuls and convolutions, forward and backward;
norms and elementwise ops are not counted), and ``fraction_of_ceiling`` is achieved GFLOP/s over the 3x3 conv
forward+backward ceiling measured at the start of the same run.

Prints tables; the last line of stdout is JSON keyed by workload. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from common import ROOT, build_without_data, parts_for  # noqa: F401  (gpu.py imports parts_for)

# ------------------------------------------------------------------------------------------- fixed figures
# Reference implementations on this machine class (2 CPU cores, fp32, torch 2.14, default threads, batch 1
# unless stated), from the speed issue. flops: per step (train) or per image (translate).
REFERENCE = {
    "cyclegan_256": {"s_per_step": 16.2, "flops": 1.88e12},
    "cyclegan_128": {"s_per_step": 4.4, "flops": 0.47e12},
    "pix2pix_256": {"s_per_step": 1.22, "flops": 87e9},
    "pix2pix_128": {"s_per_step": 0.58, "flops": 21e9},
    "cgan_mlp_32": {"s_per_step": 0.056, "flops": None},   # PyTorch-GAN cgan.py (MLPs), batch 64
    "acgan_pg_32": {"s_per_step": 0.63, "flops": None},    # PyTorch-GAN acgan.py (its DCGAN-style nets), batch 64
    "translate_cyclegan_256": {"images_per_s": 1.2, "flops": 99e9},
    "translate_pix2pix_256": {"images_per_s": 4.7, "flops": 12e9},
}
CEILING_REFERENCE = {"matmul": 159.0, "conv": 144.0}  # GFLOP/s: fp32 matmul 4096^2; 3x3 conv 256 ch 64x64 fwd+bwd
REFERENCE_PEAK_MB = {"cyclegan_256": 4.1e9 / 2**20}  # the reference's CycleGAN 256 training peak, 4.1 GB
TILED_LIMIT_MB = 2e9 / 2**20  # target: a 4000x3000 image through tiles within 2 GB
# Training throughput one H100 would ask of the data loader (bf16, batch 8, benchmarks/gpu.py's workloads), as
# quoted in the speed issue: a CPU loader below these starves that GPU.
GPU_DEMAND = {"paired": ("pix2pix_256", 360.0), "unpaired": ("cyclegan_256", 71.0)}

# ------------------------------------------------------------------------------------------- workloads
CGAN_MLP = [  # PyTorch-GAN's cgan.py nets and loss (MSE) in i2i's cgan model
    ("nets.g={type: mlp_generator, z_dim: 100, num_classes: 10, embed_dim: 10, out_channels: 1, size: 32, "
     "hidden: [128, 256, 512, 1024], norm: batch}"),
    ("nets.d={type: mlp_discriminator, in_channels: 1, size: 32, hidden: [512, 512, 512], num_classes: 10, "
     "conditioning: concat, dropout: 0.4}"),
    "losses.adv={type: adversarial, mode: lsgan}"]
ACGAN_PG = [  # PyTorch-GAN's acgan.py nets in i2i's acgan model
    ("nets.g={type: 'benchmarks.pytorch_gan_nets:ACGANGenerator', z_dim: 100, num_classes: 10, out_channels: 1, "
     "size: 32}"),
    "nets.d={type: 'benchmarks.pytorch_gan_nets:ACGANDiscriminator', in_channels: 1, size: 32, num_classes: 10}"]

NO_KEEP = ["train.keep_freed_memory=false"]  # glibc hands big freed blocks back to the OS every step
BF16 = ["train.mixed_precision=bf16"]
COMPILE = ["train.compile=true"]  # off by default: measured slower (pix2pix) or equal (CycleGAN) on 2 CPU cores
FOREACH = ["optim.g.foreach=true", "optim.d.foreach=true"]  # an explicit choice turns the default fused Adam off

# name, recipe, size, recipe overrides, batch (None: the recipe's), has a same-run baseline, what it is
TRAIN = [
    ("pix2pix_128", "pix2pix", 128, [], None, True, "U-Net-128 + PatchGAN, batch 1 (small)"),
    ("cyclegan_128", "cyclegan", 128, [], None, True, "ResNet-9 G x2 + PatchGAN x2, batch 1 (small)"),
    ("pix2pix_256", "pix2pix", 256, [], None, True, "U-Net-256 + PatchGAN, batch 1 (reference)"),
    ("cyclegan_256", "cyclegan", 256, [], None, True, "ResNet-9 G x2 + PatchGAN x2, batch 1 (reference)"),
    ("dcgan_32", "dcgan", 32, [], None, True, "recipes/dcgan.yaml, batch 64"),
    ("cgan_32", "cgan", 32, [], None, True, "recipes/cgan.yaml (DCGAN nets), batch 64"),
    ("acgan_32", "acgan", 32, [], None, True, "recipes/acgan.yaml (DCGAN nets), batch 64"),
    ("infogan_32", "infogan", 32, [], None, False, "recipes/infogan.yaml, batch 64 (no baseline: 3 updates)"),
    ("cgan_mlp_32", "cgan", 32, CGAN_MLP, None, True, "PyTorch-GAN cgan.py nets (MLP), batch 64"),
    ("acgan_pg_32", "acgan", 32, ACGAN_PG, None, True, "PyTorch-GAN acgan.py nets, batch 64"),
    ("bicyclegan_128", "bicyclegan", 128, [], None, False,
     "U-Net-128 (z at all levels) + ResNet E + 2 two-scale PatchGANs, batch 2 (no baseline)"),
    # fast-path ablations: the same workload with one fast path turned off (or the CPU-slower option on)
    ("pix2pix_128_foreach", "pix2pix", 128, FOREACH, None, False, "pix2pix_128 with foreach Adam (before fused)"),
    ("cyclegan_128_foreach", "cyclegan", 128, FOREACH, None, False, "cyclegan_128 with foreach Adam (before fused)"),
    ("pix2pix_128_cl", "pix2pix", 128, ["train.channels_last=true"], None, False, "pix2pix_128 with channels_last"),
    ("pix2pix_128_malloc", "pix2pix", 128, NO_KEEP, None, False, "pix2pix_128 with glibc's default malloc thresholds"),
    ("pix2pix_256_malloc", "pix2pix", 256, NO_KEEP, None, False, "pix2pix_256 with glibc's default malloc thresholds"),
    ("cyclegan_256_malloc", "cyclegan", 256, NO_KEEP, None, False,
     "cyclegan_256 with glibc's default malloc thresholds"),
    ("pix2pix_128_compile", "pix2pix", 128, COMPILE, None, False,
     "pix2pix_128 with train.compile (compile in warm-up)"),
    ("cyclegan_128_compile", "cyclegan", 128, COMPILE, None, False,
     "cyclegan_128 with train.compile (compile in warm-up)"),
    # bf16 autocast: on CPUs with bf16 instructions only (the run skips them elsewhere); not equal math
    ("pix2pix_128_bf16", "pix2pix", 128, BF16, None, False, "pix2pix_128 with train.mixed_precision=bf16"),
    ("pix2pix_256_bf16", "pix2pix", 256, BF16, None, False, "pix2pix_256 with train.mixed_precision=bf16"),
    ("cyclegan_128_bf16", "cyclegan", 128, BF16, None, False, "cyclegan_128 with train.mixed_precision=bf16"),
    ("cyclegan_256_bf16", "cyclegan", 256, BF16, None, False, "cyclegan_256 with train.mixed_precision=bf16"),
]
# translate's whole-image workloads: name, model, --precision, --compile. Every one compares with the fp32 eager
# baseline of its model (the reference's loop): bf16 ones are not equal math.
TRANSLATE = [(f"translate_{m}_256{'_bf16' if p == 'bf16' else ''}{'_compile' if c else ''}", m, p, c)
             for p, c in (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))
             for m in ("cyclegan", "pix2pix")]
TRAIN_SMALL_FULL = [  # full mode only: the 32 px recipes at a small batch
    (f"{m}_32_b16", m, 32, [], 16, False, f"recipes/{m}.yaml, batch 16 (small)")
    for m in ("dcgan", "cgan", "acgan", "infogan")]

MODES = {
    "quick": {
        "ceiling": {"mm_steps": 3, "conv_steps": 10, "repeats": 1, "min_s": 2.0},
        "train_light": {"warmup": 2, "steps": 3, "repeats": 1, "min_s": 2.0},
        "train_heavy": {"warmup": 1, "steps": 2, "repeats": 1, "min_s": 0.0},  # 256 px CycleGAN
        "translate": {"images": 8, "batch": None, "repeats": 1},  # None: translate's own default
        "tiled": [("pix2pix", (3000, 4000)), ("cyclegan", (750, 1000))],
        "data": {"files": 16, "formats": ["jpg"], "workers": [0, 1, 2], "cache_workers": [0, 2], "samples": 24,
                 "min_s": 1.5},
        "train_extra": [],
    },
    "full": {
        "ceiling": {"mm_steps": 10, "conv_steps": 20, "repeats": 2, "min_s": 5.0},
        "train_light": {"warmup": 3, "steps": 10, "repeats": 2, "min_s": 5.0},
        "train_heavy": {"warmup": 3, "steps": 10, "repeats": 2, "min_s": 0.0},
        "translate": {"images": 24, "batch": None, "repeats": 2},
        "tiled": [("pix2pix", (3000, 4000)), ("cyclegan", (3000, 4000))],
        "data": {"files": 64, "formats": ["jpg", "png"], "workers": [0, 1, 2], "cache_workers": [0, 1, 2],
                 "samples": 100, "min_s": 4.0},
        "train_extra": TRAIN_SMALL_FULL,
    },
    "smoke": {  # every workload once at toy sizes: checks the script runs; the figures mean nothing
        "ceiling": {"matmul_n": 512, "mm_steps": 1, "conv_steps": 1, "repeats": 1, "min_s": 0.0},
        "train_light": {"warmup": 1, "steps": 1, "repeats": 1, "min_s": 0.0},
        "train_heavy": {"warmup": 1, "steps": 1, "repeats": 1, "min_s": 0.0},
        "translate": {"images": 2, "batch": 2, "repeats": 1},
        "tiled": [("pix2pix", (300, 700)), ("cyclegan", (300, 600))],
        "data": {"files": 4, "formats": ["jpg"], "workers": [0, 1], "cache_workers": [0], "samples": 4,
                 "min_s": 0.0},
        "train_extra": [],
    },
}
TILE, OVERLAP, TILE_BATCH = 512, 32, 4


# ------------------------------------------------------------------------------------------- inputs
def photos():
    """RGB photos that ship with scikit-image (no download)."""
    from skimage import data
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina"):
        try:
            out.append(getattr(data, name)())
        except (OSError, ValueError, ImportError):  # a data file missing from this install: use the others
            continue
    return out


def write_crops(folder: Path, count: int, height: int, width: int, ext: str, seed: int) -> list[Path]:
    """``count`` photo crops resized to height x width, as real data sets look (not noise, which encodes badly)."""
    import cv2
    import numpy as np

    from i2i.data.io import write_image
    rng = np.random.default_rng(seed)
    pics = photos()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        pic = pics[i % len(pics)]
        h, w = pic.shape[:2]
        side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = cv2.resize(pic[y: y + side, x: x + side], (width, height), interpolation=cv2.INTER_CUBIC)
        path = folder / f"{i:04d}.{ext}"
        write_image(path, crop)
        paths.append(path)
    return paths


def write_big(path: Path, height: int, width: int) -> None:
    import cv2

    from i2i.data.io import write_image
    write_image(path, cv2.resize(photos()[0], (width, height), interpolation=cv2.INTER_CUBIC))


def make_export(folder: Path, model: str, size: int) -> Path:
    """An export of the recipe's generator (random weights) for translate: the AtoB net only."""
    from i2i.inference.export import write_export
    recipe, parts = parts_for(model, size)
    direction, name = next(iter(parts.model.directions.items()))
    meta = {"model": model, "step": 0, "ema": False, "directions": {direction: name}, "name": f"bench_{model}"}
    return write_export(recipe, {name: parts.nets[name].state_dict()}, folder, meta)


def bf16_missing() -> str | None:
    """Why this CPU skips the bf16 workloads (it emulates bf16: hours per step), or None when it has bf16."""
    import torch

    from i2i.precision import unsupported
    return unsupported("bf16", torch.device("cpu"))


# ------------------------------------------------------------------------------------------- children
def run_child(spec: dict, label: str, timeout: float) -> dict:
    t = time.perf_counter()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {timeout:.0f} s"}
    else:
        lines = proc.stdout.strip().splitlines()
        if proc.returncode or not lines:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-3:]
            result = {"error": " | ".join(tail)}
        else:
            result = json.loads(lines[-1])
    result["wall_s"] = round(time.perf_counter() - t, 1)
    status = "ERROR " + result["error"] if "error" in result else "ok"
    print(f"  {label:34s} {result['wall_s']:7.1f} s  {status}", file=sys.stderr, flush=True)
    return result


def child_main(spec_text: str) -> None:
    from workloads import measure
    print(json.dumps(measure(json.loads(spec_text))), flush=True)


# ------------------------------------------------------------------------------------------- assembling
def _r(x, nd=3):
    return None if x is None else round(x, nd)


def assemble(mode: str, raw: dict) -> dict:
    """Child results -> the JSON entries, with ratios against the same-run baseline and the fixed figures."""
    results: dict = {}
    ceil = raw.get("ceiling", {})
    conv = ceil.get("conv", {}).get("gflops_per_s")
    conv_bf16 = ceil.get("conv_bf16", {}).get("gflops_per_s")
    for which in ("matmul", "conv", "conv_bf16"):
        c = ceil.get(which)
        if c:
            ref = CEILING_REFERENCE.get(which)
            results[f"ceiling_{which}"] = {
                "gflops_per_s": _r(c["gflops_per_s"], 1), "fraction_of_ceiling": _r(c["gflops_per_s"] / conv)
                if conv else None, "peak_rss_mb": ceil.get("peak_rss_mb"), "what": c["shape"],
                "reference_gflops_per_s": ref, "vs_reference": _r(c["gflops_per_s"] / ref) if ref else None,
                "spread": _r(c["spread"])}

    def flops_rate(flops, seconds, bf16=False):
        """GFLOP/s and the fraction of the conv ceiling at the workload's precision (bf16 ones: the bf16 conv)."""
        if not flops or not seconds:
            return None, None
        g = flops / seconds / 1e9
        top = conv_bf16 if bf16 else conv
        return _r(g, 2), (_r(g / top) if top else None)

    for name, *_ in TRAIN + TRAIN_SMALL_FULL:
        r = raw.get(f"{name}:i2i")
        if r is None:
            continue
        if "error" in r or "skipped" in r:
            results[name] = r
            continue
        s = r["s_per_step"]
        gf, frac = flops_rate(r["flops_per_step"], s, bf16=name.endswith("_bf16"))
        e = {"steps_per_s": _r(1 / s, 4), "images_per_s": _r(r["batch"] / s, 3), "s_per_step": _r(s, 4),
             "gflops_per_s": gf, "fraction_of_ceiling": frac, "peak_rss_mb": r["peak_rss_mb"],
             "gflops_per_step": _r(r["flops_per_step"] / 1e9, 2), "batch": r["batch"], "spread": _r(r["spread"]),
             "steps_timed": r["steps_timed"], "repeats": r["repeats"]}
        b = raw.get(f"{name}:ref")
        if b and "error" not in b:
            e.update(baseline_s_per_step=_r(b["s_per_step"], 4), baseline_peak_rss_mb=b["peak_rss_mb"],
                     baseline_gflops_per_step=_r(b["flops_per_step"] / 1e9, 2),
                     speedup_vs_baseline=_r(b["s_per_step"] / s, 2))
        elif b:
            e["baseline_error"] = b["error"]
        ref = REFERENCE.get(name)
        if ref:
            e.update(reference_s_per_step=ref["s_per_step"], speedup_vs_reference=_r(ref["s_per_step"] / s, 2),
                     reference_gflops_per_step=_r(ref["flops"] / 1e9, 1) if ref["flops"] else None)
        if name in REFERENCE_PEAK_MB:
            e["reference_peak_rss_mb"] = round(REFERENCE_PEAK_MB[name])
        results[name] = e

    for name, model, prec, _ in TRANSLATE:
        r = raw.get(f"{name}:i2i")
        if r is None:
            continue
        if "error" in r or "skipped" in r:
            results[name] = r
            continue
        gf, frac = flops_rate(r["flops_per_image"], r["s_per_image"], bf16=prec == "bf16")
        e = {"images_per_s": _r(r["images_per_s"], 3), "gflops_per_s": gf, "fraction_of_ceiling": frac,
             "peak_rss_mb": r["peak_rss_mb"], "gflops_per_image": _r(r["flops_per_image"] / 1e9, 2),
             "images": r["images"], "batch": r["batch"], "spread": _r(r["spread"]), "precision": prec}
        b = raw.get(f"translate_{model}_256:ref")  # bf16 against the fp32 baseline: not equal math
        if b and "error" not in b:
            e.update(baseline_images_per_s=_r(b["images_per_s"], 3), baseline_peak_rss_mb=b["peak_rss_mb"],
                     speedup_vs_baseline=_r(r["images_per_s"] / b["images_per_s"], 2))
        elif b:
            e["baseline_error"] = b["error"]
        ref = REFERENCE[f"translate_{model}_256"]
        e.update(reference_images_per_s=ref["images_per_s"],
                 speedup_vs_reference=_r(r["images_per_s"] / ref["images_per_s"], 2))
        results[name] = e

    for model, _ in MODES[mode]["tiled"]:
        name = f"translate_tiled_{model}"
        r = raw.get(name)
        if r is None:
            continue
        if "error" in r:
            results[name] = {"error": r["error"]}
            continue
        gf, frac = flops_rate(r["flops_per_image"], r["seconds"])
        results[name] = {"images_per_s": _r(r["images_per_s"], 4), "gflops_per_s": gf, "fraction_of_ceiling": frac,
                         "peak_rss_mb": r["peak_rss_mb"], "seconds": _r(r["seconds"], 1),
                         "megapixels_per_s": _r(r["megapixels_per_s"], 3), "input": r["input"], "tile": r["tile"],
                         "overlap": r["overlap"], "tiles": r["tiles"], "batch": r["batch"],
                         "gflops_per_image": _r(r["flops_per_image"] / 1e9, 1), "rss_before_mb": r["rss_before_mb"],
                         "peak_extra_mb": r["peak_extra_mb"]}

    d = raw.get("data")
    if d and "error" in d:
        results["data"] = {"error": d["error"]}
    elif d:
        for cname, c in d["configs"].items():
            model, gpu = GPU_DEMAND[c["dataset"]]
            step = results.get(model, {})
            cpu_demand = step.get("images_per_s")
            results[cname] = {
                "images_per_s": _r(c["images_per_s"], 1), "gflops_per_s": None, "fraction_of_ceiling": None,
                "peak_rss_mb": c["pss_total_mb"], "workers": c["workers"], "cache": c["cache"],
                "dataset": c["dataset"], "format": c["format"], "files": c["files"], "startup_s": _r(c["startup_s"], 2),
                "cpu_step_images_per_s": cpu_demand, "vs_cpu_step": _r(c["images_per_s"] / cpu_demand, 1)
                if cpu_demand else None, "h100_images_per_s": gpu, "vs_h100": _r(c["images_per_s"] / gpu, 2)}
    return results


# ------------------------------------------------------------------------------------------- printing
def _f(x, spec="8.3f", none="-"):
    if x is None:
        return f"{none:>{spec.split('.')[0].lstrip('<>') or 1}}"
    return format(x, spec)


def print_tables(mode: str, results: dict, settings: dict, elapsed: float, load: dict, threads: int | None) -> None:
    import torch
    conv = results.get("ceiling_conv", {}).get("gflops_per_s")
    tr = settings["train_light"]
    cores = len(os.sched_getaffinity(0))
    note = {"quick": ": fewer steps, 1 repeat, noisier", "smoke": ": toy settings, figures meaningless"}.get(mode, "")
    print(f"i2i CPU benchmarks ({mode} mode{note}); torch {torch.__version__}, "
          f"{threads or torch.get_num_threads()} threads{' (--threads)' if threads else ''}, {cores} cores, fp32; "
          f"{elapsed / 60:.1f} min")
    print(f"load average (1, 5, 15 min) at the start {load['start']}, at the end {load['end']}", end="")
    busy = max(load["start"][0], load["end"][0], load["end"][1]) > 0.5 * cores
    print(": the machine was busy, timings are unreliable (small ops suffer most)" if busy else "")
    print(f"timed steps: {tr['steps']} x {tr['repeats']} repeat(s) after {tr['warmup']} warm-up "
          f"(256 px CycleGAN: {settings['train_heavy']['steps']} x {settings['train_heavy']['repeats']} after "
          f"{settings['train_heavy']['warmup']}), at least {tr['min_s']:g} s per repeat; figures are medians of the "
          "repeats")
    print()
    print("Machine ceiling (GFLOP/s)           measured  reference  ratio  spread")
    for which in ("matmul", "conv", "conv_bf16"):
        c = results.get(f"ceiling_{which}")
        if c and "gflops_per_s" in c:
            print(f"  {c['what']:34s} {c['gflops_per_s']:8.1f} {_f(c['reference_gflops_per_s'], '10.1f')} "
                  f"{_f(c['vs_reference'], '6.2f')} {_f(c['spread'], '7.1%')}")
    bf16 = results.get("ceiling_conv_bf16", {}).get("gflops_per_s")
    print(f"  % ceil below = achieved GFLOP/s / the conv ceiling above ({_f(conv, '.1f')} GFLOP/s"
          + (f"; *_bf16 workloads: the bf16 conv, {bf16:.1f}" if bf16 else "") + "); FLOPs count matmuls and convs "
          "only")
    print()
    head = (f"{'training step':19s} {'s/step':>8s} {'steps/s':>8s} {'img/s':>7s} {'GFLOP':>8s} {'GFLOP/s':>8s} "
            f"{'%ceil':>6s} {'RSS MB':>7s} {'base s':>8s} {'x base':>7s} {'base MB':>8s} {'ref s':>7s} {'x ref':>6s} "
            f"{'spread':>7s}")
    print(head)
    for name, *_rest, what in TRAIN + TRAIN_SMALL_FULL:
        e = results.get(name)
        if e is None:
            continue
        if "error" in e or "skipped" in e:
            print(f"{name:19s} {'ERROR ' + e['error'] if 'error' in e else 'skipped: ' + e['skipped']}")
            continue
        print(f"{name:19s} {e['s_per_step']:8.3f} {e['steps_per_s']:8.3f} {e['images_per_s']:7.1f} "
              f"{e['gflops_per_step']:8.1f} {_f(e['gflops_per_s'], '8.1f')} {_f(e['fraction_of_ceiling'], '6.1%')} "
              f"{e['peak_rss_mb']:7.0f} {_f(e.get('baseline_s_per_step'), '8.3f')} "
              f"{_f(e.get('speedup_vs_baseline'), '6.2f')}x {_f(e.get('baseline_peak_rss_mb'), '8.0f')} "
              f"{_f(e.get('reference_s_per_step'), '7.3f')} {_f(e.get('speedup_vs_reference'), '5.2f')}x "
              f"{_f(e['spread'], '7.1%')}  {what}")
    print("  base: the same nets, losses and batch in a reference-style loop, same run (benchmarks/reference.py); "
          "ref: the fixed reference figure (equal math only where listed)")
    print()
    print(f"{'translate':35s} {'img/s':>7s} {'GFLOP/img':>9s} {'GFLOP/s':>8s} {'%ceil':>6s} {'RSS MB':>7s} "
          f"{'base img/s':>10s} {'x base':>7s} {'ref img/s':>9s} {'x ref':>6s}")
    for name, *_ in TRANSLATE:
        e = results.get(name)
        if e is None:
            continue
        if "error" in e or "skipped" in e:
            print(f"{name:35s} {'ERROR ' + e['error'] if 'error' in e else 'skipped: ' + e['skipped']}")
            continue
        print(f"{name:35s} {e['images_per_s']:7.2f} {e['gflops_per_image']:9.1f} {_f(e['gflops_per_s'], '8.1f')} "
              f"{_f(e['fraction_of_ceiling'], '6.1%')} {e['peak_rss_mb']:7.0f} "
              f"{_f(e.get('baseline_images_per_s'), '10.2f')} {_f(e.get('speedup_vs_baseline'), '6.2f')}x "
              f"{e['reference_images_per_s']:9.2f} {e['speedup_vs_reference']:5.2f}x")
    tl = settings["translate"]
    print(f"  {tl['images']} photo crops of 256 px (PNG) through translate_folder, batch "
          f"{tl['batch'] or 'as translate chooses'}, reading and "
          "writing included; base: the reference's test.py single-image loop (batch 1, fp32; *_bf16: translate "
          "--precision bf16 against that fp32 baseline, not equal math; *_compile: --compile, timed after a warm-up "
          "folder that compiled the net)")
    for model, _ in settings["tiled"]:
        name = f"translate_tiled_{model}"
        e = results.get(name)
        if e is None:
            continue
        if "error" in e:
            print(f"{name:24s} ERROR {e['error']}")
            continue
        print(f"{name:35s} {e['input']} px in {e['tiles']} tiles of {e['tile']} (overlap {e['overlap']}, "
              f"batch {e['batch']}): {e['seconds']:.1f} s, {e['megapixels_per_s']:.3f} MP/s, "
              f"{_f(e['gflops_per_s'], '.1f')} GFLOP/s ({_f(e['fraction_of_ceiling'], '.1%')}), peak RSS "
              f"{e['peak_rss_mb']:.0f} MB (+{e['peak_extra_mb']:.0f} over the loaded export)")
    data = [(k, v) for k, v in results.items() if k.startswith("data_")]
    if data or "data" in results:
        print()
        print(f"{'data loader':28s} {'img/s':>7s} {'start s':>8s} {'PSS MB':>7s} {'CPU step':>9s} {'x step':>7s} "
              f"{'H100':>6s} {'x H100':>7s}")
        if "data" in results:
            print(f"  ERROR {results['data']['error']}")
        for k, v in data:
            print(f"{k:28s} {v['images_per_s']:7.1f} {v['startup_s']:8.2f} {v['peak_rss_mb']:7.0f} "
                  f"{_f(v['cpu_step_images_per_s'], '9.2f')} {_f(v['vs_cpu_step'], '6.1f')}x "
                  f"{v['h100_images_per_s']:6.0f} {v['vs_h100']:6.2f}x")
        print("  samples/s (a sample is one A,B pair) of paired_folder / unpaired_folder (286 px files, resize 286, "
              "crop 256, flip), batch 1, StepSampler, persistent workers; PSS: main process + workers. CPU step: "
              "i2i's pix2pix_256 / cyclegan_256 images/s above; H100: bf16 batch-8 training (speed issue)")
    print()
    print_targets(results)


def print_targets(results: dict) -> None:
    def verdict(ok):
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    rows = []
    for name in ("cyclegan_256", "cyclegan_128"):
        e = results.get(name, {})
        x, frac = e.get("speedup_vs_reference"), e.get("fraction_of_ceiling")
        rows.append((f"{name}: >= reference throughput", verdict(None if x is None else x >= 1.0), f"{_f(x, '.2f')}x"))
        rows.append((f"{name}: >= 90% of the conv ceiling", verdict(None if frac is None else frac >= 0.9),
                     _f(frac, ".1%")))
    for name in ("pix2pix_256", "pix2pix_128", "cgan_mlp_32", "acgan_pg_32"):
        e = results.get(name, {})
        x, b = e.get("speedup_vs_reference"), e.get("speedup_vs_baseline")
        rows.append((f"{name}: >= 2x reference steps/s", verdict(None if x is None else x >= 2.0),
                     f"{_f(x, '.2f')}x (same-run baseline {_f(b, '.2f')}x)"))
    for name, *_ in TRANSLATE:
        e = results.get(name, {})
        x, b = e.get("speedup_vs_reference"), e.get("speedup_vs_baseline")
        if "skipped" in e or (not e and name not in REFERENCE):  # the issue's two targets always get a row
            continue
        what = " (bf16: not equal math)" if "_bf16" in name else ""
        rows.append((f"{name}: >= 2x reference images/s{what}", verdict(None if x is None else x >= 2.0),
                     f"{_f(x, '.2f')}x (same-run baseline {_f(b, '.2f')}x)"))
    for key, e in results.items():
        if key.startswith("translate_tiled_") and "input" in e:
            big = e["input"] == "4000x3000"
            rows.append((f"{key} {e['input']}: peak RSS <= 2 GB", verdict(e["peak_rss_mb"] <= TILED_LIMIT_MB)
                         if big else "n/a ", f"{e['peak_rss_mb']:.0f} MB" + ("" if big else " (not 4000x3000)")))
    e = results.get("cyclegan_256", {})
    if "peak_rss_mb" in e:
        rows.append(("cyclegan_256: peak RSS <= the reference's 4.1 GB",
                     verdict(e["peak_rss_mb"] <= REFERENCE_PEAK_MB["cyclegan_256"]), f"{e['peak_rss_mb']:.0f} MB"))
    print("Targets (speed issue)")
    for what, ok, value in rows:
        print(f"  {ok}  {what:72s} {value}")


# ------------------------------------------------------------------------------------------- main
def plan_jobs(mode: str, tmp: Path, only: set[str] | None) -> list[tuple[str, str, dict, float]]:
    """(result key, label, child spec, timeout s) for every measurement of this mode, inputs prepared in ``tmp``."""
    s = MODES[mode]
    def wanted(name):
        return (only is None or name in only)
    jobs = []  # the ceiling always runs: fraction_of_ceiling needs it
    no_bf16 = bf16_missing()
    jobs.append(("ceiling", "ceiling (matmul, conv)", {"kind": "ceiling", **s["ceiling"], "bf16": not no_bf16}, 600))
    for name, recipe, size, overrides, batch, baseline, _ in TRAIN + s["train_extra"]:
        if not wanted(name):
            continue
        if no_bf16 and name.endswith("_bf16"):
            jobs.append((f"{name}:i2i", "", {"skipped": no_bf16}, 0))
            continue
        timing = s["train_heavy"] if name.startswith("cyclegan_256") else s["train_light"]
        spec = {"kind": "train", "recipe": recipe, "size": size, "overrides": overrides, "batch": batch, **timing}
        jobs.append((f"{name}:i2i", f"{name} i2i", {**spec, "impl": "i2i"}, 3600))
        if baseline:
            jobs.append((f"{name}:ref", f"{name} baseline", {**spec, "impl": "ref"}, 3600))
    tl = s["translate"]
    for name, model, prec, compiled in TRANSLATE:
        if not wanted(name):
            continue
        if no_bf16 and prec == "bf16":
            jobs.append((f"{name}:i2i", "", {"skipped": no_bf16}, 0))
            continue
        export = tmp / f"export_{model}"
        if not export.exists():
            make_export(export, model, 256)
        inputs = tmp / "translate_in"
        if not inputs.exists():
            write_crops(inputs, tl["images"], 256, 256, "png", seed=1)
            write_crops(tmp / "translate_warm", tl["batch"] or 4, 256, 256, "png", seed=2)
        spec = {"kind": "translate", "export": str(export), "input": str(inputs), "warm": str(tmp / "translate_warm"),
                "size": 256, "batch": tl["batch"], "repeats": tl["repeats"], "precision": prec, "compile": compiled}
        jobs.append((f"{name}:i2i", f"{name} i2i", {**spec, "impl": "i2i", "work": str(tmp / "tr_i2i")}, 1800))
        if prec == "fp32" and not compiled:
            jobs.append((f"{name}:ref", f"{name} baseline", {**spec, "impl": "ref", "work": str(tmp / "tr_ref")},
                         1800))
    for model, (h, w) in s["tiled"]:
        name = f"translate_tiled_{model}"
        if not wanted(name):
            continue
        export = tmp / f"export_{model}"
        if not export.exists():
            make_export(export, model, 256)
        inputs = tmp / f"tiled_in_{w}x{h}"
        if not inputs.exists():
            inputs.mkdir()
            write_big(inputs / "big.png", h, w)
        jobs.append((name, f"{name} {w}x{h}", {"kind": "tiled", "export": str(export), "input": str(inputs),
                                               "work": str(tmp / f"tiled_out_{model}"), "tile": TILE,
                                               "overlap": OVERLAP, "batch": TILE_BATCH}, 3600))
    if wanted("data"):
        d = s["data"]
        configs = []
        for fmt in d["formats"]:
            paired, unpaired = tmp / f"paired_{fmt}", tmp / f"unpaired_{fmt}"
            write_crops(paired / "train", d["files"], 286, 572, fmt, seed=3)  # aligned A|B, 286 px each
            write_crops(unpaired / "trainA", d["files"], 286, 286, fmt, seed=4)
            write_crops(unpaired / "trainB", d["files"], 286, 286, fmt, seed=5)
            for dataset, root in (("paired", paired), ("unpaired", unpaired)):
                for cache in (False, True):
                    for workers in (d["cache_workers"] if cache else d["workers"]):
                        configs.append({"name": f"data_{dataset}_{fmt}_w{workers}" + ("_cache" if cache else ""),
                                        "dataset": dataset, "format": fmt, "root": str(root), "workers": workers,
                                        "cache": cache})
        jobs.append(("data", "data loader", {"kind": "data", "configs": configs, "samples": d["samples"],
                                             "min_s": d["min_s"]}, 1800))
    return jobs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer steps and images, 1 repeat (about 9 min on 2 cores)")
    p.add_argument("--smoke", action="store_true", help="every workload once at toy settings (checks the script)")
    p.add_argument("--only", default=None, help="comma-separated workload names (the ceiling always runs)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads for every workload and baseline (default: the trainer's, one per "
                        "core, and torch's default for the baselines)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child_main(args.child)
        return
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    only = set(args.only.split(",")) if args.only else None
    if only:
        s = MODES[mode]
        valid = {n for n, *_ in TRAIN + s["train_extra"]} | {"ceiling", "data"} | {n for n, *_ in TRANSLATE}
        valid |= {f"translate_tiled_{m}" for m, _ in s["tiled"]}
        if only - valid:
            p.error(f"--only: unknown workload(s) {', '.join(sorted(only - valid))}; valid in {mode} mode: "
                    f"{', '.join(sorted(valid))}")
    t0, load_start = time.perf_counter(), os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="i2i_bench_"))
    raw: dict = {}
    try:
        print(f"preparing inputs in {tmp} ...", file=sys.stderr, flush=True)
        jobs = plan_jobs(mode, tmp, only)
        print(f"{len(jobs)} measurements, each in a fresh process ({mode} mode):", file=sys.stderr, flush=True)
        for key, label, spec, timeout in jobs:
            raw[key] = dict(spec) if "skipped" in spec else run_child({**spec, "threads": args.threads}, label, timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = assemble(mode, raw)
    elapsed = time.perf_counter() - t0
    load = {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]}
    print_tables(mode, results, MODES[mode], elapsed, load, args.threads)
    import torch
    results["_meta"] = {"mode": mode, "seconds": round(elapsed, 1), "torch": torch.__version__,
                        "threads": args.threads or torch.get_num_threads(), "cores": len(os.sched_getaffinity(0)),
                        "load_average": load,
                        "ceiling_for_fraction": "ceiling_conv",
                        "timing": {k: MODES[mode][k] for k in ("train_light", "train_heavy", "translate")},
                        "note": {"quick": "quick mode: fewer steps and 1 repeat, noisier",
                                 "smoke": "smoke mode: toy settings, figures meaningless"}.get(
                            mode, "full mode: 2 repeats of at least 10 timed steps after warm-up")}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
