"""Run a spec's verification commands in a worktree, one pass at a time, under a global slot limit."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from orchestra.core.base.files import owner_only, take_slot
from orchestra.core.base.names import is_check_name
from orchestra.core.base.procs import kill_group
from orchestra.core.base.output import LineSplitter, clean_line
from orchestra.core.base.redact import Redactor
from orchestra.core.gates.failures import save_failures
from orchestra.core.gates.reports import TestFailure, parse_junit, parse_pytest
from orchestra.core.runs.run import Gate

TAIL_LINES = 200
LOG_LIMIT = 8 * 1024 * 1024  # bytes of a command's output its log keeps from the start; the rest is counted
# The score's rule for check names: a plain file name, so a log can only land in the run's gates/ directory.


def gate_log_path(run_dir: Path, name: str) -> Path:
    """Where the log of check `name` goes: `<run_dir>/gates/<name>.log`; ValueError for an invalid name."""
    if not is_check_name(name):
        raise ValueError(f"invalid check name {name!r}: its log would not be inside the run's directory")
    return run_dir / "gates" / f"{name}.log"


class CappedLog:
    """A gate's log: the first `limit` bytes of output, then how much was not kept and the last lines;
    with every secret redact knows replaced, even one split across two chunks."""

    def __init__(self, file: BinaryIO, limit: int = LOG_LIMIT, redact: Redactor | None = None) -> None:
        self.file, self.limit = file, limit
        self.redact = redact or Redactor()
        self.stream = self.redact.stream()  # holds back the end of a chunk that may begin a secret
        self.kept = self.dropped = 0

    def write(self, chunk: bytes) -> None:
        self.keep(self.stream.feed(chunk))

    def keep(self, chunk: bytes) -> None:
        room = max(0, self.limit - self.kept)
        if room:
            self.file.write(chunk[:room])
            self.kept += min(room, len(chunk))
        self.dropped += max(0, len(chunk) - room)

    def finish(self, tail: Iterable[str]) -> None:
        """After a cut, append a marker line and the last lines, so the end of a test run is still there."""
        self.keep(self.stream.flush())
        if not self.dropped:
            return
        lines = list(tail)
        self.file.write(f"\n[orchestra: {self.dropped} bytes of output were not kept; "
                        f"the last {len(lines)} lines follow]\n".encode())
        self.file.write("".join(self.redact(line) + "\n" for line in lines).encode("utf-8", "replace"))


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
        """Block until one slot is held (whichever frees first: see base.files.take_slot)."""
        self._fd = take_slot(self.lock_dir, self.count)

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


async def _read_all(stream: asyncio.StreamReader, log: CappedLog, tail: deque[str]) -> None:
    """Copy a command's output to its log and keep its last lines, cleaned for display."""
    splitter = LineSplitter()
    while chunk := await stream.read(65536):
        log.write(chunk)
        tail.extend(map(clean_line, splitter.feed(chunk)[-TAIL_LINES:]))  # only the last can stay
    tail.extend(map(clean_line, splitter.flush()))


DRAIN_GRACE = 0.5  # seconds a check's output is still read after the check itself has exited


async def _finish(proc: asyncio.subprocess.Process, log: CappedLog, tail: deque[str],
                  timeout: float) -> float | None:
    """Read the command's output until it has ended, then end what it left in its process group; the
    timeout it ran into, or None. A background child holding the output open does not keep the check
    running: once the command has exited, its output is read for DRAIN_GRACE more, then the group goes."""
    async def read_and_wait() -> None:  # both under the timeout: a command may close its output and hang
        reader = asyncio.ensure_future(_read_all(proc.stdout, log, tail))
        await _exited(proc)
        done, _ = await asyncio.wait({reader}, timeout=DRAIN_GRACE)
        if not done:
            kill_group(proc.pid)
            await reader
        await proc.wait()
    try:
        await asyncio.wait_for(read_and_wait(), timeout)
    except asyncio.TimeoutError:
        kill_group(proc.pid)
        await proc.wait()
        return timeout
    except asyncio.CancelledError:
        kill_group(proc.pid)
        raise
    kill_group(proc.pid)  # a daemon-less background child the check left in its group
    return None


EXIT_POLL = 0.25  # seconds between looks at the exit status asyncio's child watcher collected


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Until the process itself has exited (Process.wait also waits for its output to close): its pidfd
    says so at once; the exit status asyncio's child watcher collected says so too, looked at every
    EXIT_POLL, for the pidfd that never tells (one opened in a race with the process's end and reaping)."""
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    try:
        fd: int | None = os.pidfd_open(proc.pid)
    except (OSError, AttributeError):
        fd = None
    if fd is not None:
        loop.add_reader(fd, lambda: exited.done() or exited.set_result(None))
    try:
        while not exited.done() and proc.returncode is None:
            await asyncio.wait({exited}, timeout=EXIT_POLL)
    finally:
        if fd is not None:
            loop.remove_reader(fd)
            os.close(fd)


Launch = Callable[[str], tuple[list[str], dict[str, str]]]

def plain_launch(command: str) -> tuple[list[str], dict[str, str]]:
    """How a check starts without a jail: the shell, in orchestra's own environment."""
    return ["/bin/sh", "-c", command], {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


async def run_check(name: str, command: str, worktree: Path, tree: str, log_path: Path,
                    timeout: float, junit: str | None = None, launch: Launch = plain_launch,
                    redact: Redactor | None = None) -> Gate:
    """Run one verification command in the worktree (started as launch says: in the run's jail) and
    read its result; redact keeps secrets out of its log and its output tail."""
    gate = Gate(name=name, status="running", tree=tree, started=time.time())
    argv, env = launch(command)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    redact = redact or Redactor()
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(log_path, "wb", opener=owner_only) as log_file:  # opened first: a command never starts without its log
        log = CappedLog(log_file, redact=redact)
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=worktree, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        timed_out = await _finish(proc, log, tail, timeout)
        log.finish(tail)
    gate.exit_code = proc.returncode
    gate.output_tail = [redact(line) for line in tail]
    counts = parse_junit(worktree, junit, gate.started) if junit else parse_pytest(gate.output_tail)
    gate.passed, gate.failed, gate.failures = counts.passed, counts.failed, counts.failures
    save_failures(log_path, [TestFailure(f.name, redact(f.message), redact(f.text)) for f in counts.failure_texts])
    gate.status = "passed" if proc.returncode == 0 and timed_out is None else "failed"
    gate.summary = summarise(gate, timed_out)
    gate.finished = time.time()
    return gate
