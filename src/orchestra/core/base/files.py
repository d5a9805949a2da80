"""Files that survive crashes and concurrent writers: advisory locks, slots, atomic replaces, durable directories."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, shared: bool = False, blocking: bool = True) -> Iterator[int]:
    """Hold an advisory lock on path (created if missing) for the block; yields the locked descriptor.

    The lock belongs to the open file: a child process that inherits the descriptor keeps it held.
    Not blocking, BlockingIOError when someone else holds it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)  # private, like all orchestra keeps
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)


def take_slot(lock_dir: Path, count: int) -> int:
    """Hold one of count slots (lock files in lock_dir, shared by every process) and return its descriptor;
    closing it frees the slot. A semaphore across processes: checkouts and gates of every run share the cores.

    Waiters queue for the first slot freed, whichever it is: a waiter bound to one slot in advance would leave
    another idle while its own queue drains. Only the first waiter looks (in short naps); the others wait for
    their turn on the queue's lock."""
    with file_lock(lock_dir / "queue.lock"):
        nap = 0.01
        while True:
            for slot in range(count):
                fd = os.open(lock_dir / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
            time.sleep(nap)
            nap = min(nap * 2, 0.1)


@contextmanager
def slot_held(lock_dir: Path, count: int) -> Iterator[None]:
    """Hold one of count slots for the block (see take_slot)."""
    fd = take_slot(lock_dir, count)
    try:
        yield
    finally:
        os.close(fd)


def owner_only(path: str, flags: int) -> int:
    """An opener for open(): a file it creates is readable and writable by its owner alone."""
    return os.open(path, flags, 0o600)


def fsync_dir(directory: Path) -> None:
    """Flush a directory so a file created, renamed or removed in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, durable: bool = False, mode: int = 0o666) -> None:
    """Replace path's content so readers see either the old or the new file, never a mix.

    With durable, the rename itself is flushed too: the new content survives a power cut. The new file
    gets mode (less the umask)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", opener=lambda name, flags: os.open(name, flags, mode)) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
