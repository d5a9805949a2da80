"""An interactive agent's pseudo-terminal, owned by its supervisor, and the socket conductors attach through.

The supervisor opens the pty; the agent gets its other end as its controlling terminal (sessions.py says how).
The supervisor always reads the pty, whether or not anyone is attached, so the agent never blocks on a full
terminal: what it reads feeds a TerminalScreen, whose new lines become the run's output (at most
SCREEN_WRITES_PER_SECOND times a second, so the pane's tail shows the screen while nobody is attached), and
goes to every attached conductor. Attachers connect to a unix socket in the run's private directory (0600), send
their window size and keys (attach_wire), and get a redraw of the screen first. Any number may attach; the
last one to report a size sets the terminal's.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
import time
from collections.abc import Callable
from pathlib import Path

from orchestra.core.supervise.attach_wire import HEADER, KEYS, MAX_FRAME, SIZE, WINDOW, reachable
from orchestra.core.supervise.screen import TerminalScreen

SCREEN_WRITES_PER_SECOND = 4
SLOW_ATTACHER = 1 << 20  # bytes queued for an attacher that does not read: it is let go, the agent goes on
READ_SIZE = 65536


class AgentTerminal:
    """A pty, its screen, and the attach socket at socket_path."""

    def __init__(self, socket_path: Path, on_lines: Callable[[list[str]], None],
                 on_cursor_line: Callable[[str], None] = lambda text: None, rows: int = 24, columns: int = 80) -> None:
        """on_lines gets the screen's new lines; on_cursor_line the line the cursor is on (a prompt waiting)."""
        self.socket_path, self.on_lines, self.on_cursor_line = socket_path, on_lines, on_cursor_line
        self.screen = TerminalScreen(rows, columns)
        self.master, self.slave = os.openpty()
        os.set_blocking(self.master, False)
        self._set_window(rows, columns)
        self.screen.screen.answer = self._answer_unattended
        self.attachers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.AbstractServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ended: asyncio.Future[None] | None = None
        self._typed = bytearray()  # keys the agent has not read yet
        self._emit: asyncio.TimerHandle | None = None
        self._last_emit = 0.0

    # -- the pty -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Read the pty and listen for attachers (the agent is started with self.slave meanwhile)."""
        self.loop = asyncio.get_running_loop()
        self.ended = self.loop.create_future()
        self.loop.add_reader(self.master, self._read)
        self.socket_path.unlink(missing_ok=True)
        old_mask = os.umask(0o177)  # the socket is the run owner's alone from the moment it exists
        try:
            with reachable(self.socket_path) as address:
                self.server = await asyncio.start_unix_server(self._serve, address)
        finally:
            os.umask(old_mask)

    def release_slave(self) -> None:
        """The agent has its end: let go of ours, so the pty reports the end once the agent's side closes."""
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1

    async def pump(self) -> None:
        """Wait until the pty's other end is closed by everything that held it."""
        assert self.ended is not None
        await asyncio.shield(self.ended)

    def _read(self) -> None:
        try:
            data = os.read(self.master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: nothing holds the agent's end any more
            data = b""
        if not data:
            self._end()
            return
        self.screen.feed(data)
        for writer in list(self.attachers):
            self._send(writer, data)
        self._schedule_emit()

    def _end(self) -> None:
        assert self.loop is not None and self.ended is not None
        self.loop.remove_reader(self.master)
        self._emit_now()
        if not self.ended.done():
            self.ended.set_result(None)

    def _schedule_emit(self) -> None:
        """Emit the screen's new lines now, or when SCREEN_WRITES_PER_SECOND allows: a burst is one emission."""
        if self._emit is not None:
            return
        assert self.loop is not None
        delay = max(0.0, self._last_emit + 1 / SCREEN_WRITES_PER_SECOND - time.monotonic())
        self._emit = self.loop.call_later(delay, self._emit_now)

    def _emit_now(self) -> None:
        if self._emit is not None:
            self._emit.cancel()
            self._emit = None
        self._last_emit = time.monotonic()
        if self.screen.changed:
            lines = self.screen.changed_lines()
            if lines:
                self.on_lines(lines)
            self.on_cursor_line(self.screen.cursor_line())

    def type(self, data: bytes) -> None:
        """Keys for the agent, written as it reads them (never blocking the supervisor)."""
        if not data or self.master < 0:
            return
        self._typed += data
        self._write_typed()

    def _write_typed(self) -> None:
        assert self.loop is not None
        try:
            written = os.write(self.master, bytes(self._typed))
        except BlockingIOError:
            written = 0
        except OSError:
            self._typed.clear()
            written = 0
        del self._typed[:written]
        if self._typed:
            self.loop.add_writer(self.master, self._write_typed)
        else:
            self.loop.remove_writer(self.master)

    def _answer_unattended(self, data: str) -> None:
        """The screen's answer to a query of the agent's; an attached terminal answers it itself."""
        if not self.attachers and self.loop is not None:
            self.type(data.encode())

    def _set_window(self, rows: int, columns: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def resize(self, rows: int, columns: int) -> None:
        """Give the terminal a new size; the kernel tells the agent (SIGWINCH)."""
        if (rows, columns) == self.screen.size or not (rows and columns) or self.master < 0:
            return  # unchanged, or unknown to the attacher's terminal
        self.screen.resize(rows, columns)
        self._set_window(rows, columns)

    def signal_foreground(self, sig: int) -> None:
        """Signal the process group in the terminal's foreground (the agent's CLI, or what it runs)."""
        try:
            os.killpg(os.tcgetpgrp(self.master), sig)
        except OSError:
            pass

    # -- attachers -----------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            kind, payload = await _read_frame(reader)
            if kind == SIZE:
                self.resize(*WINDOW.unpack(payload))
            if self.ended is not None and self.ended.done():
                return
            self._send(writer, self.screen.redraw())
            self.attachers.add(writer)
            if kind == KEYS:
                self.type(payload)
            while True:
                kind, payload = await _read_frame(reader)
                if kind == SIZE:
                    self.resize(*WINDOW.unpack(payload))
                elif kind == KEYS:
                    self.type(payload)
        except (asyncio.IncompleteReadError, ConnectionError, struct.error, ValueError):
            pass  # the attacher left (or spoke nonsense): the session goes on
        finally:
            self.attachers.discard(writer)
            writer.close()

    def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.transport.is_closing() or writer.transport.get_write_buffer_size() > SLOW_ATTACHER:
            self.attachers.discard(writer)
            writer.close()
            return
        writer.write(data)

    async def close(self) -> None:
        """Stop listening, let every attacher go (their connection closes), and close the pty."""
        if self.server is not None:
            self.server.close()
            self.socket_path.unlink(missing_ok=True)
        for writer in list(self.attachers):
            writer.close()
        self.attachers.clear()
        if self.loop is not None and self.master >= 0:
            self.loop.remove_reader(self.master)
            self.loop.remove_writer(self.master)
        if self._emit is not None:
            self._emit.cancel()
        self.release_slave()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


async def _read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    kind, length = HEADER.unpack(await reader.readexactly(HEADER.size))
    if length > MAX_FRAME:
        raise ValueError("frame too long")
    return kind, await reader.readexactly(length)

