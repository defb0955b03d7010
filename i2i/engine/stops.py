"""How a run stops early and cleanly: a fault (NaN/Inf, disk full) or SIGINT/SIGTERM."""
from __future__ import annotations

import signal
import sys
import threading

from ..errors import I2IError


class TrainingStopped(I2IError):
    """The run stopped on a fault (NaN/Inf) before saving anything from after it."""


class TrainingInterrupted(I2IError):
    """SIGINT/SIGTERM: the run wrote a checkpoint at the current step and stopped; exit 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


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
