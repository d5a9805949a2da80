"""The conductor's end of an interactive session: this terminal, in raw mode, relayed to a run's pty.

attach() connects to the run's attach socket, sends this terminal's size (again on every SIGWINCH), relays
what is typed to the agent and what the agent's terminal shows back here, starting with a redraw of its
screen, until the detach key (ctrl-] unless told otherwise) is typed or the session ends. No Textual: the
fleet suspends itself and calls it, and `orchestra attach` calls it from any terminal (over SSH too).
"""

from __future__ import annotations

import os
import select
import selectors
import signal
import socket
import termios
import threading
import tty
from pathlib import Path

from orchestra.core.supervise.attach_wire import KEYS, connect, frame, size_frame

DETACH_KEY = b"\x1d"  # ctrl-]
DETACHED, ENDED = "detached", "ended"
# What the agent may have switched on in this terminal, switched off again when the conductor leaves: colours,
# a hidden cursor, application cursor keys, bracketed paste, mouse reporting, the alternate screen.
_RESET = (b"\x1b[0m\x1b[?25h\x1b[?1l\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1049l\n")


def key_name(key: bytes) -> str:
    """How a control key is written for people: ctrl-] for 0x1d."""
    if len(key) == 1 and key[0] < 0x20:
        return f"ctrl-{chr(key[0] + 0x40).lower()}"
    return key.decode(errors="replace")


def parse_key(text: str) -> bytes:
    """A detach key as people write it ("ctrl-]", "ctrl-x") as the byte the terminal sends; ValueError if it
    is not a control key."""
    name = text.strip().lower().removeprefix("ctrl-").removeprefix("c-").removeprefix("^")
    code = ord(name.upper()) - 0x40 if len(name) == 1 else -1
    if not 0 < code < 0x20 or text.strip().lower() == name:
        raise ValueError(f"{text!r} is not a control key: write it as ctrl-] or ctrl-x")
    return bytes([code])


def attach(path: Path, label: str, stdin: int = 0, stdout: int = 1, detach_key: bytes = DETACH_KEY) -> str:
    """Relay this terminal to the session at path until detached (DETACHED) or the session ends (ENDED);
    label names the run in the line said on attaching. OSError when nobody listens at path."""
    connection = connect(path)
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous = _on_resize(lambda: os.write(wake_write, b"w"))
    try:
        if saved is not None:
            tty.setraw(stdin, termios.TCSADRAIN)  # not TCSAFLUSH: keys typed ahead go to the agent
        said = f"attached to {label}; {key_name(detach_key)} detaches"
        # The screen's redraw follows at once: the window title keeps saying it.
        _write_all(stdout, f"{said}\r\n\x1b]2;orchestra: {said}\x07".encode())
        connection.sendall(size_frame(*_window(stdout)))
        return _relay(connection, stdin, stdout, wake_read, detach_key)
    except ConnectionError:  # the supervisor closed the session while a key was on its way
        return ENDED
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        _restore_resize(previous)
        _write_all(stdout, _RESET)
        for fd in (wake_read, wake_write):
            os.close(fd)
        connection.close()


def _relay(connection: socket.socket, stdin: int, stdout: int, wake: int, detach_key: bytes) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stdin, selectors.EVENT_READ, "keys")
        selector.register(connection, selectors.EVENT_READ, "screen")
        selector.register(wake, selectors.EVENT_READ, "resize")
        while True:
            for key, _ in selector.select():
                if key.data == "screen":
                    shown = connection.recv(65536)
                    if not shown:
                        return ENDED
                    _write_all(stdout, shown)
                elif key.data == "resize":
                    os.read(wake, 512)
                    connection.sendall(size_frame(*_window(stdout)))
                else:
                    typed = os.read(stdin, 4096)
                    cut = typed.find(detach_key) if typed else 0
                    if cut >= 0:
                        typed = typed[:cut]
                    if typed:
                        connection.sendall(frame(KEYS, typed))
                    if cut >= 0:
                        return DETACHED


def _window(fd: int) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 24, 80
    return size.lines, size.columns


def _on_resize(wake: object) -> object:
    """Install a SIGWINCH handler that wakes the relay (only the main thread may; elsewhere sizes are sent once)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGWINCH, lambda signum, frame: wake())  # type: ignore[operator]


def _restore_resize(previous: object) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGWINCH, previous)  # type: ignore[arg-type]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])  # a non-blocking stdout that is full: wait for room
