"""Reduced precision (bf16/fp16 autocast) only where the hardware has it: training and translate ask here first.

Some CPUs run bf16 convolutions about twice as fast as fp32 (AVX512-BF16 or AMX; figures in benchmarks/README.md);
others emulate it hundreds of times slower. CPU flags are not trusted: a quick matmul probe decides.
"""
from __future__ import annotations

import contextlib
import time

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
FULL = ("no", "fp32")  # names of plain fp32 (the recipe says "no", translate says "fp32")
SLOW = 3.0  # a probe slower than this many times fp32 is refused
FAST = 0.7  # ... and one faster than this is worth suggesting


def cpu_slowdown(dtype: torch.dtype, n: int = 256, repeats: int = 5) -> float:
    """Time of an n x n matmul in ``dtype`` over fp32 on this CPU (flags lie: some CPUs emulate bf16). One thread
    and the best of ``repeats``: a 256 px bf16 matmul takes tens of microseconds, so on a busy machine a thread
    waiting for a core would otherwise decide the answer."""
    def best(x: torch.Tensor) -> float:
        x @ x
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            x @ x
            times.append(time.perf_counter() - t)
        return min(times)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = torch.randn(n, n)
        return best(a.to(dtype)) / max(best(a), 1e-9)
    finally:
        torch.set_num_threads(threads)


def unsupported(precision: str, device: torch.device) -> str | None:
    """Why ``precision`` autocast would not run well on ``device`` (a phrase), or None when it would."""
    if precision in FULL:
        return None
    dtype = DTYPES[precision]
    if device.type == "cuda":
        if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
            return f"this GPU ({torch.cuda.get_device_name(device)}) has no bf16 support"
        return None
    if device.type != "cpu":
        return None
    slowdown = cpu_slowdown(dtype)
    if slowdown <= SLOW:
        return None
    return f"ran {slowdown:.0f}x slower than fp32 on this CPU in a quick matmul probe (no hardware support)"


def autocast(precision: str, device: torch.device):
    """The context that runs a forward pass at ``precision`` on ``device`` (nothing for fp32)."""
    if precision in FULL:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])
