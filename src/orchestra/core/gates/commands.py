"""Run a spec's verification commands in a worktree, one pass at a time, under a global slot limit."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections import deque
from pathlib import Path

from orchestra.core.base.procs import kill_group
from orchestra.core.base.output import LineSplitter, clean_line
from orchestra.core.gates.reports import parse_junit, parse_pytest
from orchestra.core.runs.run import Gate

TAIL_LINES = 200


def gate_slot_count() -> int:
    """How many verification commands may run at once across all runs: half the cores, at least one."""
    configured = os.environ.get("ORCHESTRA_GATE_SLOTS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, (os.cpu_count() or 2) // 2)


class GateSlots:
    """A cross-process semaphore made of lock files, so runs in different processes share cores."""

    def __init__(self, lock_dir: Path, count: int | None = None) -> None:
        self.lock_dir = lock_dir
        self.count = count or gate_slot_count()
        self._fd: int | None = None

    def acquire(self) -> None:
        """Block until one slot is held."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        fds = [os.open(self.lock_dir / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o644) for i in range(self.count)]
        try:
            for fd in fds:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._fd = fd
                    return
                except BlockingIOError:
                    continue
            self._fd = fds[os.getpid() % self.count]
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        finally:
            for fd in fds:
                if fd != self._fd:
                    os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def summarise(gate: Gate, timed_out: float | None) -> str:
    """One line saying how a command gate ended."""
    if timed_out is not None:
        return f"timed out after {timed_out:g}s"
    if gate.passed is not None or gate.failed is not None:
        parts = [f"{gate.failed} failed"] if gate.failed else []
        return ", ".join(parts + [f"{gate.passed} passed"])
    return f"exit {gate.exit_code}"


async def _read_all(stream: asyncio.StreamReader, log, tail: deque[str]) -> None:
    """Copy a command's output to its log file and keep its last lines, cleaned for display."""
    splitter = LineSplitter()
    while chunk := await stream.read(65536):
        log.write(chunk)
        tail.extend(map(clean_line, splitter.feed(chunk)))
    tail.extend(map(clean_line, splitter.flush()))


async def run_check(name: str, command: str, worktree: Path, tree: str, log_path: Path,
                    timeout: float, junit: str | None = None) -> Gate:
    """Run one verification command in the worktree and read its result."""
    gate = Gate(name=name, status="running", tree=tree, started=time.time())
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_shell(
        command, cwd=worktree, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    timed_out = None

    async def read_and_wait() -> None:  # both under the timeout: a command may close its output and hang
        await _read_all(proc.stdout, log, tail)
        await proc.wait()
    with open(log_path, "wb") as log:
        try:
            await asyncio.wait_for(read_and_wait(), timeout)
        except asyncio.TimeoutError:
            timed_out = timeout
            kill_group(proc.pid)
            await proc.wait()
        except asyncio.CancelledError:
            kill_group(proc.pid)
            raise
    gate.exit_code = proc.returncode
    gate.output_tail = list(tail)
    counts = parse_junit(worktree / junit) if junit else parse_pytest(gate.output_tail)
    gate.passed, gate.failed, gate.failures = counts.passed, counts.failed, counts.failures
    gate.status = "passed" if proc.returncode == 0 and timed_out is None else "failed"
    gate.summary = summarise(gate, timed_out)
    gate.finished = time.time()
    return gate
