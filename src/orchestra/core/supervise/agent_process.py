"""Run one agent process in its own process group, streaming its output lines to a callback."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.agents.wire import parse_record
from orchestra.core.base.procs import kill_group
from orchestra.core.base.output import LineSplitter, clean_line

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


@dataclass
class Outcome:
    """How an agent process ended."""

    exit_code: int | None
    stopped: bool = False
    timed_out: bool = False


class AgentProcess:
    """A shell command run for an agent; stop() ends its whole process group."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str],
                 on_line: Callable[[str], None], on_start: Callable[[int], None], *,
                 on_record: Callable[[dict], None] | None = None,
                 on_partial: Callable[[str], None] | None = None, open_stdin: bool = False) -> None:
        """on_record gets the agent's records (see agent_wire) instead of them being logged; on_partial
        the unfinished last line after each read (a prompt waiting for an answer has no newline);
        open_stdin gives the agent a pipe nobody writes to, so a question blocks instead of reading EOF."""
        self.command, self.cwd, self.env = command, cwd, env
        self.on_line, self.on_start = on_line, on_start
        self.on_record, self.on_partial, self.open_stdin = on_record, on_partial, open_stdin
        self.proc: asyncio.subprocess.Process | None = None
        self._stopping = False

    async def run(self, timeout: float) -> Outcome:
        stdin = asyncio.subprocess.PIPE if self.open_stdin else asyncio.subprocess.DEVNULL
        self.proc = await asyncio.create_subprocess_exec(
            *self.command, cwd=self.cwd, env=self.env, stdin=stdin,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        self.on_start(self.proc.pid)
        try:
            await asyncio.wait_for(self._pump_and_wait(), timeout)
        except asyncio.TimeoutError:
            await self.stop()
            return Outcome(self.proc.returncode, timed_out=True)
        return Outcome(self.proc.returncode, stopped=self._stopping)

    async def _pump_and_wait(self) -> None:
        """Read the output to its end and wait for the process: both count against the timeout."""
        assert self.proc
        await self._pump()
        await self.proc.wait()

    async def _pump(self) -> None:
        splitter = LineSplitter()
        assert self.proc and self.proc.stdout
        while chunk := await self.proc.stdout.read(65536):
            for line in splitter.feed(chunk):
                self._take(line)
            if self.on_partial is not None:
                self.on_partial(clean_line(splitter.pending))
        for line in splitter.flush():
            self._take(line)

    def _take(self, raw: bytes) -> None:
        record = parse_record(raw) if self.on_record is not None else None
        if record is not None and self.on_record is not None:
            self.on_record(record)
        else:
            self.on_line(clean_line(raw))

    async def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it after a grace period."""
        if self.proc is None:
            return
        self._stopping = True
        if self.proc.returncode is not None:
            # The leader has ended, but what it started in the background may still run in its group.
            kill_group(self.proc.pid, signal.SIGKILL)
            return
        kill_group(self.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_GRACE)
        except asyncio.TimeoutError:
            kill_group(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        # Children that left the group's leader behind still share its group id.
        kill_group(self.proc.pid, signal.SIGKILL)
