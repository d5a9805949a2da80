"""Named fault points: a test arms one (ORCHESTRA_FAULT=<name>) and the process is SIGKILLed there.

`ORCHESTRA_FAULT=<name>:INT` instead sends SIGINT to the process's whole group at that point, as a
Ctrl-C at the terminal would.

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
    """Die here, at once and without cleanup, when the environment arms this point (or get a Ctrl-C)."""
    armed = os.environ.get(ENV)
    if armed == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif armed == f"{name}:INT":
        os.killpg(os.getpgrp(), signal.SIGINT)
