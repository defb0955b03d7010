"""What one benchmark child process measures. ``run.py --child SPEC`` calls ``measure(spec)`` in a fresh process,
so the peak memory it reports is that workload's own; the result is printed as the child's last line (JSON).

Kinds: ``ceiling`` (matmul and conv microbenchmarks), ``train`` (i2i's step or a reference-style step),
``translate`` (whole images through ``translate_folder``, or the reference's loop), ``tiled`` (one large image
through ``translate_folder`` in tiles) and ``data`` (the folder data sets through the trainer's DataLoader).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import common
import torch
import torch.nn.functional as F
from common import (
    count_flops,
    cpu_threads,
    parts_for,
    peak_rss_mb,
    random_batch,
    rss_mb,
    summary,
    timed,
)


def measure(spec: dict) -> dict:
    kind = spec["kind"]
    if spec.get("threads"):
        common.THREADS = spec["threads"]
        torch.set_num_threads(spec["threads"])  # the baselines keep torch's default otherwise
    result = {"ceiling": ceiling, "train": train, "translate": translate, "tiled": tiled, "data": data}[kind](spec)
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    result["threads"] = torch.get_num_threads()
    return result


# ---------------------------------------------------------------------------------------------------- ceiling
def ceiling(spec: dict) -> dict:
    """fp32 GFLOP/s of a 4096^3 matmul and of a 3x3 conv (256 -> 256 channels, 64x64, batch 1) forward + backward."""
    torch.set_num_threads(cpu_threads())
    g = torch.Generator().manual_seed(0)
    n = spec.get("matmul_n", 4096)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    out = torch.empty(n, n)
    mm_flops = 2 * n ** 3
    mm = summary(timed(lambda: torch.mm(a, b, out=out), 1, spec["mm_steps"], spec["repeats"], spec["min_s"]))

    x = torch.randn(1, 256, 64, 64, generator=g, requires_grad=True)
    w = torch.randn(256, 256, 3, 3, generator=g, requires_grad=True)
    grad = torch.randn(1, 256, 64, 64, generator=g)

    def conv_at(precision: str):
        """Forward + backward of the conv, under autocast as train.mixed_precision runs it (fp32: none)."""
        from i2i.precision import autocast

        def conv():
            x.grad = w.grad = None
            with autocast(precision, torch.device("cpu")):
                y = F.conv2d(x, w, padding=1)
            y.backward(grad.to(y.dtype))
        return conv

    conv_flops = count_flops(conv_at("fp32"))  # forward + input gradient + weight gradient: 3 x 2*C*C*9*H*W
    out = {"matmul": {"gflops_per_s": mm_flops / mm["s_per_call"] / 1e9, "spread": mm["spread"],
                      "flops": mm_flops, "shape": f"{n}x{n} @ {n}x{n}"}}
    shapes = {"conv": ("fp32", "3x3 conv 256->256, 1x64x64, fwd+bwd"),
              "conv_bf16": ("bf16", "the same conv, bf16 autocast")}
    for key in ("conv", "conv_bf16") if spec.get("bf16") else ("conv",):
        precision, shape = shapes[key]
        cv = summary(timed(conv_at(precision), 2, spec["conv_steps"], spec["repeats"], spec["min_s"]))
        out[key] = {"gflops_per_s": conv_flops / cv["s_per_call"] / 1e9, "spread": cv["spread"], "flops": conv_flops,
                    "shape": shape}
    return out


# ---------------------------------------------------------------------------------------------------- train
def trainer_step(recipe, parts, batch: dict):
    """``Trainer.step``, the step ``Trainer.fit`` runs, on the same objects (Accelerate on the CPU, speed options,
    optimizers, step context, autocast, schedulers, the losses' statistics), without data loading, logging or
    checkpoints."""
    from i2i.engine.trainer import Trainer

    trainer = Trainer(recipe).prepare(parts, threads=common.THREADS)
    return lambda: trainer.step(batch)


def reference_train_step(recipe, parts, batch: dict):
    from reference import (
        PYTORCH_GAN,
        pytorch_gan_step,
        reference_optimizers,
        reference_step,
    )

    torch.set_flush_denormal(False)  # the references never flush denormals
    model, kind = parts.model, recipe["model"]["type"]
    for net in model.nets.values():
        net.train()
    opts = reference_optimizers(recipe, model)
    if kind in ("pix2pix", "cyclegan"):
        return lambda: reference_step(kind, model, opts, batch)
    if kind in PYTORCH_GAN:
        return lambda: pytorch_gan_step(kind, model, opts, batch)
    raise SystemExit(f"no reference-style step for model type '{kind}'")


def train(spec: dict) -> dict:
    recipe, parts = parts_for(spec["recipe"], spec["size"], spec.get("overrides", []))
    batch_size = spec.get("batch") or recipe["data"]["batch_size"]
    batch = random_batch(recipe["model"]["type"], parts, batch_size, spec["size"])
    step = (trainer_step if spec["impl"] == "i2i" else reference_train_step)(recipe, parts, batch)
    t = time.perf_counter()
    flops = count_flops(step)  # also the first warm-up step
    first_s = time.perf_counter() - t
    runs = timed(step, max(0, spec["warmup"] - 1), spec["steps"], spec["repeats"], spec["min_s"])
    s = summary(runs)
    return {"s_per_step": s["s_per_call"], "spread": s["spread"], "runs": runs, "flops_per_step": flops,
            "batch": batch_size, "first_step_s": first_s, "steps_timed": spec["steps"],
            "repeats": spec["repeats"]}


# ---------------------------------------------------------------------------------------------------- translate
def _net_flops(net: torch.nn.Module, channels: int, height: int, width: int | None = None) -> int:
    x = torch.rand(1, channels, height, width or height) * 2 - 1
    with torch.inference_mode():
        return count_flops(lambda: net(x))


def translate(spec: dict) -> dict:
    """Whole images: ``translate_folder`` (i2i) or the reference's loop, over the same PNGs and net weights."""
    from i2i.inference.export import load_export
    from i2i.inference.translate import translate_folder

    torch.set_num_threads(cpu_threads())
    export = load_export(spec["export"])
    _, net = export.generator()
    files = sorted(Path(spec["input"]).glob("*.png"))
    warm = sorted(Path(spec["warm"]).glob("*.png"))
    work = Path(spec["work"])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runs = []
    if spec["impl"] == "i2i":
        options = {"batch_size": spec["batch"], "precision": spec.get("precision", "fp32"),  # batch None: default
                   "compile": spec.get("compile", False)}
        translate_folder(export, spec["warm"], work / "warm", **options)
        for r in range(spec["repeats"]):
            t = time.perf_counter()
            result = translate_folder(export, spec["input"], work / f"out_{r}", **options)
            runs.append((time.perf_counter() - t) / len(files))
            if result["failed"] or result["images"] != len(files):
                raise SystemExit(f"translate failed: {result['failures']}")
    else:
        from reference import reference_translate
        torch.set_flush_denormal(False)
        net.eval()
        reference_translate(net, warm, work / "warm")
        for r in range(spec["repeats"]):
            t = time.perf_counter()
            reference_translate(net, files, work / f"out_{r}")
            runs.append((time.perf_counter() - t) / len(files))
    peak = peak_rss_mb()
    s = summary(runs)
    shutil.rmtree(work, ignore_errors=True)
    return {"s_per_image": s["s_per_call"], "images_per_s": 1 / s["s_per_call"], "spread": s["spread"],
            "runs": runs, "images": len(files), "batch": (spec["batch"] or "auto") if spec["impl"] == "i2i" else 1,
            "flops_per_image": _net_flops(net, net.in_channels, spec["size"]), "peak_rss_mb": round(peak, 1)}


def tiled(spec: dict) -> dict:
    """One large image through ``translate_folder`` in tiles: time, peak memory, FLOPs of all its tiles."""
    from i2i.data.io import read_image
    from i2i.inference.export import load_export
    from i2i.inference.tiling import check_tile, tile_starts
    from i2i.inference.translate import min_size, size_multiple, translate_folder

    torch.set_num_threads(cpu_threads())
    export = load_export(spec["export"])
    name, net = export.generator()
    work = Path(spec["work"])
    shutil.rmtree(work, ignore_errors=True)
    before = rss_mb()
    t = time.perf_counter()
    result = translate_folder(export, spec["input"], work, batch_size=spec["batch"], tile=spec["tile"],
                              tile_overlap=spec["overlap"])
    seconds = time.perf_counter() - t
    peak = peak_rss_mb()
    if result["failed"] or not result["tiled"]:
        raise SystemExit(f"tiled translate failed or did not tile: {result}")
    out = read_image(next(work.rglob("*.png")))
    height, width = out.shape[:2]
    shutil.rmtree(work, ignore_errors=True)
    multiple = size_multiple(export, name)
    tile, _ = check_tile(spec["tile"], spec["overlap"], multiple=multiple, min_size=min_size(export, name))
    ph, pw = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    tiles = (len(tile_starts(ph, tile, spec["overlap"], multiple))
             * len(tile_starts(pw, tile, spec["overlap"], multiple)))
    flops = tiles * _net_flops(net, net.in_channels, min(tile, ph), min(tile, pw))  # every tile has this size
    return {"seconds": seconds, "images_per_s": 1 / seconds, "megapixels_per_s": width * height / seconds / 1e6,
            "input": f"{width}x{height}", "tile": tile, "overlap": spec["overlap"], "tiles": tiles,
            "batch": result.get("tile_batch", spec["batch"]), "flops_per_image": flops,
            "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), "peak_extra_mb": round(peak - before, 1)}


# ---------------------------------------------------------------------------------------------------- data
def _pss_tree_mb() -> float:
    """Proportional set size of this process and its children (DataLoader workers): shared pages counted once."""
    def children(pid: int) -> list[int]:
        found = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
        return found

    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
        todo += children(pid)
    return total


def data(spec: dict) -> dict:
    """Samples/s of paired_folder and unpaired_folder (the recipes' augmentation: 286 resize, 256 crop, flip)
    through the trainer's DataLoader setup (StepSampler, batch 1, persistent workers), per workers and cache."""
    from torch.utils.data import DataLoader

    from i2i.data.folders import PairedFolder, UnpairedFolder
    from i2i.engine.sampler import StepSampler

    torch.set_num_threads(cpu_threads())
    out = {}
    for cfg in spec["configs"]:
        cls = PairedFolder if cfg["dataset"] == "paired" else UnpairedFolder
        ds = cls(root=cfg["root"], size=256, load_size=286, flip=True, cache=cfg["cache"])
        workers = cfg["workers"]
        loader = DataLoader(ds, batch_size=1, sampler=StepSampler(len(ds), 1, seed=0), num_workers=workers,
                            pin_memory=False, persistent_workers=workers > 0, drop_last=True,
                            generator=torch.Generator().manual_seed(0))
        it = iter(loader)
        t = time.perf_counter()
        next(it)
        startup = time.perf_counter() - t
        # with the cache on, every worker must have read every file once (each worker keeps its own cache)
        for _ in range(len(ds) * (workers + 1) if cfg["cache"] else 2 * max(1, workers)):
            next(it)
        n, t = 0, time.perf_counter()
        while n < spec["samples"] or time.perf_counter() - t < spec["min_s"]:
            next(it)
            n += 1
        seconds = time.perf_counter() - t
        pss = _pss_tree_mb()
        del it, loader
        out[cfg["name"]] = {"images_per_s": n / seconds, "samples": n, "startup_s": startup, "workers": workers,
                            "cache": cfg["cache"], "dataset": cfg["dataset"], "format": cfg["format"],
                            "files": len(ds), "pss_total_mb": round(pss, 1)}
    return {"configs": out}
