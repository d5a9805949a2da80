"""Waiting in Pilot tests on a condition that says what it waits for (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable


async def wait_for(pilot, condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Let the app run until condition() holds; fail naming what did not happen within timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
