"""Signals to whole process groups: an agent or a gate is a group, and it ends as one."""

from __future__ import annotations

import os
import signal


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process group led by pid, ignoring one that is already gone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
