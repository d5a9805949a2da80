"""What `orchestra attach` and an interactive run's supervisor say to each other over the run's attach socket.

The attacher sends frames: a kind byte, a 4-byte big-endian length, the payload. SIZE (rows and columns, two
unsigned shorts) comes first and again on every resize; KEYS carries what the conductor typed. The supervisor
sends the terminal's bytes as they are: first a redraw of the current screen, then the agent's output. It
closes the connection when the session ends.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KEYS = b"k"
SIZE = b"w"
HEADER = struct.Struct("!cI")
WINDOW = struct.Struct("!HH")
MAX_FRAME = 1 << 16
SOCKET_NAME = "attach.sock"
_SUN_PATH_MAX = 100  # sun_path holds 108 bytes; a longer path is reached through its directory's descriptor


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def size_frame(rows: int, columns: int) -> bytes:
    """A window size; 0 rows or columns (a terminal that does not know its size) leaves the agent's as it is."""
    return frame(SIZE, WINDOW.pack(max(0, min(rows, 0xFFFF)), max(0, min(columns, 0xFFFF))))


def socket_path(run_dir: Path) -> Path:
    """Where a run's supervisor listens while its interactive session lives (in the run's private directory,
    which the sandbox hides from the agent)."""
    return run_dir / SOCKET_NAME


@contextmanager
def reachable(path: Path) -> Iterator[str]:
    """An address for path that fits in sun_path: the path itself, or (when longer) the same file through
    /proc/self/fd and a descriptor of its directory, held open while the address is used."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def connect(path: Path) -> socket.socket:
    """A connection to the attach socket at path; OSError when nobody listens there."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with reachable(path) as address:
            client.connect(address)
    except OSError:
        client.close()
        raise
    return client
