"""CPU memory allocator settings for training and translation.

glibc's malloc serves blocks above its mmap threshold (128 KiB, rising to at most 32 MiB) with fresh ``mmap``
calls and gives them back with ``munmap`` on free, and it trims the top of its heap as soon as a few MiB there
are free. A training step frees and reallocates the same activations and gradients every iteration, so on the
CPU each step faults its working set in again from the kernel, zeroed page by page (the measured cost is in
benchmarks/README.md, "Figures moved out of the code").

``keep_freed_memory`` raises both thresholds at run time with ``mallopt``, so big blocks come from the heap and
stay there for the next step. The peak resident size is the same working set as before (freed blocks are
reused, not added to), but the process does not hand memory back until it exits. It does nothing off glibc
(macOS, Windows, musl), where another allocator is in charge, and nothing when the user has chosen malloc
settings of their own (``GLIBC_TUNABLES`` with malloc tunables, ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``) or preloaded another allocator (jemalloc, tcmalloc, mimalloc via ``LD_PRELOAD``).
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 2**31 - 1  # mallopt takes an int: blocks up to 2 GiB come from the heap and are kept

_applied: bool | None = None


def user_chose_allocator(environ: dict | None = None) -> str | None:
    """The environment setting that shows the user chose their own malloc behaviour, or None."""
    env = os.environ if environ is None else environ
    if "glibc.malloc." in env.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"):
        if key in env:
            return key
    if any(name in env.get("LD_PRELOAD", "") for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return "LD_PRELOAD"
    return None


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # not Linux, or a libc without the name (musl)
        return False


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds so freed blocks stay in the process; True if they were set.

    Idempotent, and a no-op (False) off Linux/glibc or when the user chose malloc settings themselves.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not _glibc() or user_chose_allocator():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # the mmap threshold first: setting the trim threshold alone turns glibc's dynamic mmap threshold off at
    # its 128 KiB start, which sends more blocks to mmap (measured: slower than leaving both alone)
    _applied = bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))
    return _applied
