"""How a run stops early and cleanly: a fault (NaN/Inf, disk full) or SIGINT/SIGTERM."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from ..errors import I2IError

# what torch.save (its zip writer) and others say, in a RuntimeError, when a write fails (a full disk, a quota)
_WRITE_FAILURE_TEXT = ("No space left", "Disk quota", "file write failed", "PytorchStreamWriter", "inline_container")


class TrainingStopped(I2IError):
    """The run stopped on a fault (NaN/Inf) before saving anything from after it."""


class TrainingInterrupted(I2IError):
    """SIGINT/SIGTERM: the run wrote a checkpoint at the current step and stopped; exit 128 + signal. ``result``:
    the run's figures so far, which the CLI prints as its JSON line."""

    def __init__(self, message: str, signum: int, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.exit_code = 128 + signum
        self.result = result


def is_write_failure(exc: BaseException) -> bool:
    """A failed file write, however the library reports it: OSError (Python, Pillow), SafetensorError
    (safetensors), RuntimeError from torch.save's zip writer."""
    if isinstance(exc, (OSError, SafetensorError)):
        return True
    return isinstance(exc, RuntimeError) and any(t in str(exc) for t in _WRITE_FAILURE_TEXT)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    for known in ("No space left on device", "Disk quota exceeded"):
        if known in text:
            return known
    first = (text.splitlines() or [type(exc).__name__])[0]
    first = re.sub(r"^\[enforce fail at [^\]]*\][ .]*", "", first)  # torch's C++ source location
    return f"the write failed: {first[:200]}"


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def describe_disk(path: str | os.PathLike) -> str:
    """'the disk mounted at /mnt/x has 0 bytes free of 20.0 MB now': the file system holding ``path`` (after the
    failed write's partial files were removed, where they were)."""
    where = Path(os.path.abspath(path))
    while not where.exists() and where != where.parent:
        where = where.parent
    mount = where
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return f"the disk mounted at {mount}"
    return f"the disk mounted at {mount} has {_size(usage.free)} free of {_size(usage.total)} now"


def write_failure_message(what: str, exc: BaseException, where: str | os.PathLike) -> str:
    """'could not write WHAT (No space left on device: FILE); the disk mounted at M has F free of T now'."""
    filename = getattr(exc, "filename", None) or where
    return f"could not write {what} ({_reason(exc)}: {filename}); {describe_disk(where)}"


class StopSignals:
    """Record SIGINT/SIGTERM instead of dying mid-step; a second SIGINT interrupts at once."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        print(f"\ni2i: {signal.Signals(signum).name} received: finishing this step and writing a checkpoint "
              "(SIGINT again to quit at once)", file=sys.stderr, flush=True)

    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else ""

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def ignore_stop_signals(worker_id: int) -> None:
    """Data loader workers leave SIGINT/SIGTERM to the main process. A signal sent to the whole process group
    (Ctrl-C, `timeout`, a cluster scheduler cancelling the job) would otherwise kill the workers first, and the
    main process would die of "DataLoader worker killed" instead of finishing its step and checkpointing; the
    workers end when the main process shuts the loader down (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
