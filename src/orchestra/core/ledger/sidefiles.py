"""The files next to the ledger: the lock, the head ({"count", "hash"}) and the pending line.

The head records how many entries the ledger holds and the last one's hash, so removing entries
from the end is caught. The pending file holds the complete line of an append in progress: it is
written (and flushed) before the line is appended and removed once the head and the anchor have
caught up, so a crash at any instant leaves enough to finish the append, never to repeat it.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.canonical import canonical_json
from orchestra.core.base.files import fsync_dir
from orchestra.core.ledger.lines import GENESIS, LedgerError


@dataclass(frozen=True)
class Tip:
    """Where a ledger ends: its number of entries and its last entry's hash (GENESIS when empty)."""

    count: int
    hash: str


EMPTY = Tip(0, GENESIS)


class SideFiles:
    """The lock, head and pending files of the ledger at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _sibling(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    @property
    def lock_path(self) -> Path:
        return self._sibling(".lock")

    @property
    def head_path(self) -> Path:
        return self._sibling(".head")

    @property
    def pending_path(self) -> Path:
        return self._sibling(".pending")

    @contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        """Hold flock on the lock file; readers skip locking when the directory does not exist."""
        if not exclusive and not self.path.parent.is_dir():
            yield
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the fd releases the flock

    def read_head(self) -> Tip | None:
        """The head record, None when there is no head file; LedgerError if it is corrupt."""
        name = self.head_path.name
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except IsADirectoryError as exc:
            raise LedgerError(f"head file {name} is a directory") from exc
        except (OSError, ValueError) as exc:
            raise LedgerError(f"head file {name} is unreadable ({exc})") from exc
        valid = isinstance(head, dict) and isinstance(head.get("count"), int)
        if not (valid and isinstance(head.get("hash"), str)):
            raise LedgerError(f"head file {name} does not hold a count and a hash")
        return Tip(head["count"], head["hash"])

    def write_head(self, tip: Tip) -> None:
        """Atomically replace the head file."""
        self._write_atomic(self.head_path, canonical_json({"count": tip.count, "hash": tip.hash}).encode("utf-8"))

    def read_pending(self) -> bytes | None:
        """The pending line (with its newline), None when no append is in progress."""
        try:
            return self.pending_path.read_bytes()
        except FileNotFoundError:
            return None

    def write_pending(self, line: bytes) -> None:
        """Durably record the line about to be appended."""
        self._write_atomic(self.pending_path, line)

    def remove_pending(self) -> None:
        """Durably forget the pending line (the append is complete)."""
        self.pending_path.unlink(missing_ok=True)
        fsync_dir(self.path.parent)

    def _write_atomic(self, target: Path, data: bytes) -> None:
        """Temp file, fsync, os.replace, fsync the directory: readers see the old or the new file."""
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
