"""Named fault points: a test arms one (ORCHESTRA_FAULT=<name>) and the process is SIGKILLed there.

Crash-safety is tested by injection, not by luck: every step of a decision or a ledger append that
a crash could interrupt declares a point, and the tests kill the process at each one in turn and
check that the next orchestra command converges. Unarmed, a point costs one dictionary lookup."""

from __future__ import annotations

import os
import signal

ENV = "ORCHESTRA_FAULT"
POINTS: set[str] = set()


def declare(name: str) -> str:
    """Register a fault point's name (so a test can check each one is exercised) and return it."""
    POINTS.add(name)
    return name


def fault_point(name: str) -> None:
    """Die here, at once and without cleanup, when the environment arms this point."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
