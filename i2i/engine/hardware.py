"""The machine a run trains on: which device, whether its precision is fast there, CPU threads and memory,
and the speed options applied to each net (the benchmarks use these too)."""
from __future__ import annotations

import logging
import os

import torch

from .. import precision
from ..allocator import keep_freed_memory
from ..errors import RecipeError
from ..recipe import TrainConfig

log = logging.getLogger("i2i")


def speed_options(net: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """``train.channels_last`` and ``train.compile`` applied to one net (the benchmarks use this too)."""
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if cfg.compile:
        net.compile()  # in place: parameter names, checkpoints and exports stay as without compile
    return net


def cpu_settings(cfg: TrainConfig, threads: int | None = None) -> None:
    """Training on the CPU: intra-op threads (``threads``, else ``train.cpu_threads``, else the cores shared out
    among the local processes: `accelerate launch` exports OMP_NUM_THREADS=1 unless told otherwise) and, with
    ``train.keep_freed_memory``, freed memory kept in the process (each step would otherwise fault its
    activations and gradients in afresh). The benchmarks use this too."""
    torch.set_num_threads(threads or cfg.cpu_threads or max(1, len(os.sched_getaffinity(0)) // local_processes()))
    if cfg.keep_freed_memory:
        keep_freed_memory()


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(device, non_blocking=True)
            if channels_last and v.dim() == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def check_precision(mixed_precision: str, allow_slow: bool, device: torch.device, file: str, *,
                    hint: bool = True) -> bool:
    """bf16/fp16 autocast where the hardware lacks it is hundreds of times slower: stop, and say so. On a CPU that
    has fast bf16 and trains in fp32, say that bf16 is there to be had (unless ``hint`` is False: the trainer gives
    the hint once per run folder). Returns whether the hint was given."""
    if device.type == "cpu" and mixed_precision in precision.FULL:
        if not hint or os.environ.get("RANK", "0") != "0":  # one hint per run, not one per process
            return False
        slowdown = precision.cpu_slowdown(torch.bfloat16)
        if slowdown < precision.FAST:
            log.info("this CPU runs bf16 matmuls %.1fx faster than fp32: train.mixed_precision=bf16 may train "
                     "faster (autocast: convolutions in bf16, losses and weights in fp32)", 1 / slowdown)
            return True
        return False
    reason = None if allow_slow else precision.unsupported(mixed_precision, device)
    if reason:
        raise RecipeError(f"{mixed_precision} mixed precision {reason}; set train.mixed_precision=no (or "
                          "train.allow_slow_precision=true to insist)", file=file, key="train.mixed_precision",
                          value=mixed_precision, choices=["no"])
    return False


def planned_device(force_cpu: bool) -> torch.device:
    """The device Accelerate will pick, known before it is created (so precision can be refused first)."""
    if not force_cpu and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true", "yes"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
    return torch.device("cpu")


def local_processes() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
        return True
    except ImportError:
        return False
