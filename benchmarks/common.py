"""Shared pieces of the benchmarks: recipe parts without data, a plain step context, timing and memory helpers.

``parts_for`` is also imported by ``benchmarks/gpu.py`` (through ``run.py``).
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from i2i.build import build, validate_recipe
from i2i.recipe import load_recipe

TRANSLATION = ("pix2pix", "cyclegan", "bicyclegan")


def recipe_for(model: str, size: int, overrides: tuple[str, ...] | list[str] = ()):
    """A bundled recipe (``recipes/<model>.yaml``) at ``size`` px, pointed at no data, with extra overrides."""
    extra = ["data.root=/nonexistent", "train.tensorboard=false"]
    if model in TRANSLATION:
        extra += [f"data.size={size}", f"data.load_size={size}"]
    if model in ("pix2pix", "bicyclegan"):
        extra.append(f"nets.g.depth={ {128: 7, 256: 8}.get(size, 7) }")  # the reference's unet_128 / unet_256
    extra.append("eval=null")  # scoring is not part of a step
    return load_recipe(ROOT / "recipes" / f"{model}.yaml", [*extra, *overrides])


def parts_for(model: str, size: int, overrides: tuple[str, ...] | list[str] = ()):
    """(recipe, parts) of a bundled recipe at ``size`` px: nets, losses and model built, no data set."""
    recipe = recipe_for(model, size, overrides)
    torch.manual_seed(0)
    return recipe, build_without_data(recipe)


def build_without_data(recipe):
    """Nets, losses and model only: the benchmark feeds random batches, so the data set is not built."""
    return build(recipe, dataclasses.replace(validate_recipe(recipe), dataset=lambda **kwargs: None))


def random_batch(model_name: str, parts, batch: int, size: int, seed: int = 0) -> dict:
    """Random inputs with the keys the model reads: real_a/real_b (translation) or real/y (the 32 px GANs)."""
    g = torch.Generator().manual_seed(seed)
    if model_name in TRANSLATION:
        a = parts.model.nets[next(iter(parts.model.directions.values()))].in_channels
        return {"real_a": torch.rand(batch, a, size, size, generator=g) * 2 - 1,
                "real_b": torch.rand(batch, 3, size, size, generator=g) * 2 - 1}
    d = parts.model.nets["d"]
    channels = getattr(d, "in_channels", 1)
    classes = getattr(parts.model.nets["g"], "num_classes", 0) or 10
    return {"real": torch.rand(batch, channels, size, size, generator=g) * 2 - 1,
            "y": torch.randint(0, classes, (batch,), generator=g)}


def timed(fn: Callable[[], object], warmup: int, steps: int, repeats: int, min_seconds: float = 0.0) -> list[float]:
    """Seconds per call, one figure per repeat. Each repeat runs at least ``steps`` calls and ``min_seconds``."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        n, t = 0, time.perf_counter()
        while n < steps or time.perf_counter() - t < min_seconds:
            fn()
            n += 1
        runs.append((time.perf_counter() - t) / n)
    return runs


def summary(runs: list[float]) -> dict:
    """Median seconds per call over the repeats and their spread ((max - min) / median)."""
    med = statistics.median(runs)
    return {"s_per_call": med, "spread": (max(runs) - min(runs)) / med if len(runs) > 1 else None}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB."""
    return _status_mb("VmHWM")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call by ``torch.utils.flop_counter`` (matmuls and convolutions, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


THREADS: int | None = None  # run.py --threads: one intra-op thread count for every workload and baseline


def cpu_threads() -> int:
    """What the trainer uses on a CPU (one intra-op thread per core this process may run on), or --threads."""
    return THREADS or max(1, len(os.sched_getaffinity(0)))
