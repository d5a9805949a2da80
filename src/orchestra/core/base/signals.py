"""Hold off Ctrl-C (and a hang-up or a polite kill) while a decision changes things.

A decision is journalled, so even a SIGKILL is recovered from; but an interrupt in the middle of git
updating the user's checkout would leave files half-written in it. In the block, SIGINT, SIGTERM and
SIGHUP are noted instead of acted on; when the block ends, the first one noted is raised (as
KeyboardInterrupt for SIGINT, SystemExit otherwise). Only the main thread can do this; elsewhere the
block runs as is (the UI decides in worker threads and never gets these signals there)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, _frame: noted.append(number)) for sig in DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if noted:
        if noted[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + noted[0])
