"""Start, find and stop run supervisors: detached processes that outlive whoever started them."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from orchestra.core.base.files import owner_only
from orchestra.core.base.procs import kill_group
from orchestra.core.runs.run import Run

SUPERVISOR_MODULE = "orchestra.core.supervise.supervisor"
# Supervisors started by an older orchestra run under the old path; they are just as alive.
SUPERVISOR_MODULES = (SUPERVISOR_MODULE, "orchestra.core.supervisor")
STOP_TIMEOUT = 20.0


def start_supervisor(state_dir: Path, run_id: str, cwd: Path, mode: str = "run") -> int:
    """Start a run's supervisor in its own session (so a dying UI or SSH drop does not end it)."""
    run_dir = state_dir / "runs" / run_id
    with open(run_dir / "supervisor.log", "ab", opener=owner_only) as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", SUPERVISOR_MODULE, str(state_dir), run_id, "--mode", mode],
            cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, close_fds=True)
    # Reap it when it ends so a long-lived UI collects no zombies; after the UI ends, init does.
    threading.Thread(target=proc.wait, daemon=True, name=f"reap-{run_id}").start()
    return proc.pid


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def supervisor_alive(run: Run) -> bool:
    """Whether the process recorded as this run's supervisor is alive and really is it."""
    pid = run.supervisor_pid
    if not pid:
        return False
    cmd = _cmdline(pid)
    return any(module in cmd for module in SUPERVISOR_MODULES) and run.id in cmd and not _is_zombie(pid)


def supervisors_of(state_dir: Path, run_id: str) -> list[int]:
    """Live supervisor processes of a run, found by their command line (when its record is unreadable)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = _cmdline(int(entry.name))
            if any(module in cmd for module in SUPERVISOR_MODULES) and str(state_dir) in cmd and run_id in cmd \
                    and not _is_zombie(int(entry.name)):
                found.append(int(entry.name))
    return found


def wait_for_exit(run: Run, timeout: float) -> None:
    """Wait until the run's supervisor has ended, or timeout: woken by its exit (a pidfd), not by polling."""
    assert run.supervisor_pid
    try:
        fd = os.pidfd_open(run.supervisor_pid)
    except (OSError, AttributeError):
        fd = None
    deadline = time.monotonic() + timeout
    try:
        while supervisor_alive(run) and time.monotonic() < deadline:
            if fd is None:
                time.sleep(0.02)
            else:
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    finally:
        if fd is not None:
            os.close(fd)


def stop_supervisor(run: Run, timeout: float = STOP_TIMEOUT) -> None:
    """Ask a run's supervisor to stop (it stops the agent and commits its work); force it if it hangs."""
    if not supervisor_alive(run):
        if run.agent_pgid:
            kill_group(run.agent_pgid)
        return
    assert run.supervisor_pid
    os.kill(run.supervisor_pid, signal.SIGTERM)
    wait_for_exit(run, timeout)
    if supervisor_alive(run):
        os.kill(run.supervisor_pid, signal.SIGKILL)
        if run.agent_pgid:
            kill_group(run.agent_pgid)
