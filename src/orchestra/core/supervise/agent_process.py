"""Run one agent process in its own process group, streaming its output lines to a callback.

The agent dies with its supervisor (PR_SET_PDEATHSIG), and when its turn ends, whatever it left running
is ended too (see reaper): when it exits, even if a child still holds its output open, when it is
stopped, and at its timeout.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestra.core.agents.wire import parse_record
from orchestra.core.base.output import LineSplitter, clean_line
from orchestra.core.supervise.reaper import Reaper, die_with_parent

if TYPE_CHECKING:
    from orchestra.core.supervise.terminal import AgentTerminal

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
DRAIN_GRACE = 0.5  # seconds the output of an agent that has exited is read before what it left is ended
EOF_WAIT = 5.0  # seconds, once that is ended, for the rest of its output
STREAM_LIMIT = 2**16


@dataclass
class Outcome:
    """How an agent process ended."""

    exit_code: int | None
    stopped: bool = False
    timed_out: bool = False


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's stream protocol, plus a future set when the process exits (Process.wait also waits until
    every holder of its pipes has closed them, which a background child may never do)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=STREAM_LIMIT, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


class AgentProcess:
    """A shell command run for an agent; stop() ends its process group and everything else it started."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str],
                 on_line: Callable[[str], None], on_start: Callable[[int], None], *,
                 on_record: Callable[[dict], None] | None = None,
                 on_partial: Callable[[str], None] | None = None, open_stdin: bool = False,
                 reaper: Reaper | None = None, terminal: AgentTerminal | None = None) -> None:
        """on_record gets the agent's records (see agent_wire) instead of them being logged; on_partial
        the unfinished last line after each read (a prompt waiting for an answer has no newline);
        open_stdin gives the agent a pipe nobody writes to, so a question blocks instead of reading EOF;
        reaper ends what the agent left running (by default, every other descendant of this process);
        terminal, for an interactive session, is the pty the agent gets as its stdin, stdout and stderr (its
        output goes to the terminal's screen, not to on_line)."""
        self.command, self.cwd, self.env = command, cwd, env
        self.on_line, self.on_start = on_line, on_start
        self.on_record, self.on_partial, self.open_stdin = on_record, on_partial, open_stdin
        self.reaper = reaper or Reaper()
        self.terminal = terminal
        self.proc: asyncio.subprocess.Process | None = None
        self.transport: asyncio.SubprocessTransport | None = None
        self.exited: asyncio.Future[None] | None = None
        self._stopping = False

    async def run(self, timeout: float | None) -> Outcome:
        """Run the agent to its end, or until timeout seconds (None: no limit) have passed."""
        stdin = asyncio.subprocess.PIPE if self.open_stdin else asyncio.subprocess.DEVNULL
        stdio = {"stdin": stdin, "stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.STDOUT}
        if self.terminal is not None:
            await self.terminal.start()
            stdio = dict.fromkeys(("stdin", "stdout", "stderr"), self.terminal.slave)
        loop = asyncio.get_running_loop()
        self.transport, protocol = await loop.subprocess_exec(
            lambda: _ExitProtocol(loop), *self.command, cwd=self.cwd, env=self.env, **stdio,
            start_new_session=True, preexec_fn=die_with_parent(os.getpid()))
        if self.terminal is not None:
            self.terminal.release_slave()
        self.exited = protocol.exited
        self.proc = asyncio.subprocess.Process(self.transport, protocol, loop)
        self.on_start(self.proc.pid)
        try:
            await asyncio.wait_for(self._pump_and_wait(), timeout)
        except TimeoutError:
            await self.stop()
            return Outcome(self.proc.returncode, timed_out=True)
        finally:
            await self.end_rest()
            self.transport.close()  # the process has ended: this lets go of a pipe still held open
        return Outcome(self.proc.returncode, stopped=self._stopping)

    async def _exit(self) -> None:
        assert self.exited is not None
        await asyncio.shield(self.exited)

    async def _pump_and_wait(self) -> None:
        """Wait for the process and read its output to the end: both count against the timeout."""
        assert self.proc
        pump = asyncio.ensure_future(self._pump())
        try:
            await self._exit()
            await self._drain(pump)
        finally:
            pump.cancel()

    async def _drain(self, pump: asyncio.Future[None]) -> None:
        """The agent has exited: read what it wrote; if something it left keeps its output open after a
        short grace, end that (so a background child cannot keep the turn going), then read the rest."""
        await asyncio.wait({pump}, timeout=DRAIN_GRACE)
        if not pump.done():
            await self.end_rest()
            await asyncio.wait({pump}, timeout=EOF_WAIT)
        if pump.done():
            pump.result()
        # Otherwise a process outside this supervisor's tree holds it (a descriptor passed over a socket):
        # the turn ends all the same, and the pipe is let go of (run closes the transport).

    async def _pump(self) -> None:
        if self.terminal is not None:
            await self.terminal.pump()
            return
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

    async def end_rest(self) -> None:
        """End every process the agent started that is still running (off the event loop: it walks /proc)."""
        await asyncio.to_thread(self.reaper.end_all)

    def _signal_group(self, sig: int) -> None:
        """Signal the agent's process group while its leader is not yet reaped (so its id is still the
        agent's); what left the group is found by the reaper instead."""
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after a grace period, then end whatever else it started."""
        if self.proc is None:
            return
        self._stopping = True
        if self.terminal is not None:
            self.terminal.signal_foreground(signal.SIGHUP)  # what an interactive CLI gets when its terminal goes
        if self.proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._exit(), STOP_GRACE)
            except TimeoutError:
                self._signal_group(signal.SIGKILL)
                await self._exit()
        await self.end_rest()
