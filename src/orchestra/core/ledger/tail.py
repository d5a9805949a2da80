"""Where the ledger file ends, and how an interrupted append relates to that end.

An append writes its complete line to the pending file first. After a crash the line is either
not in the ledger yet (the ledger still ends where the line's prev says), or it is its last line,
or its first bytes are (a torn write). Anything else means the ledger changed after the crash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from orchestra.core.ledger.lines import LedgerError, last_line, parse_line, partial_tail
from orchestra.core.ledger.sidefiles import EMPTY, Tip
from orchestra.core.base.words import plural


@dataclass(frozen=True)
class Tail:
    """The file's end: its tip, its last entry (None when empty) and a torn last line (b"" if none)."""

    tip: Tip
    last: dict | None
    torn: bytes
    end: int  # size without the torn bytes


@dataclass(frozen=True)
class Pending:
    """An interrupted append: its line, its entry, and where the ledger stands relative to it."""

    line: bytes
    entry: dict
    appended: bool          # the line is the file's last line
    torn: bool              # the file ends with the line's first bytes
    previous: dict | None   # the entry before it (None when it is the first)

    @property
    def before(self) -> Tip:
        return Tip(self.entry["seq"], self.entry["prev"])

    @property
    def after(self) -> Tip:
        return Tip(self.entry["seq"] + 1, self.entry["hash"])


def tip_of(raw: bytes, what: str = "ledger's last line") -> tuple[Tip, dict | None]:
    """The tip a ledger whose last line is raw ends at, and that entry; LedgerError if it is not one."""
    if raw == b"":
        return EMPTY, None
    try:
        entry = parse_line(raw)
        seq, last = entry["seq"], entry["hash"]
        if not (isinstance(seq, int) and isinstance(last, str)):
            raise TypeError("seq or hash has the wrong type")
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"{what} is not a valid entry ({exc}); refusing to chain onto it") from exc
    return Tip(seq + 1, last), entry


def read_tail(fd: int) -> Tail:
    """The end of the open ledger file."""
    size = os.fstat(fd).st_size
    torn = partial_tail(fd, size)
    end = size - len(torn)
    tip, last = tip_of(last_line(fd, end))
    return Tail(tip=tip, last=last, torn=torn, end=end)


def parse_pending(raw: bytes) -> dict | None:
    """The pending line's entry, None when the line is not a complete, chained entry."""
    try:
        entry = parse_line(raw[:-1]) if raw.endswith(b"\n") else None
    except ValueError:
        return None
    if entry is None or b"\n" in raw[:-1]:
        return None
    ok = isinstance(entry.get("seq"), int) and isinstance(entry.get("prev"), str) and isinstance(entry.get("hash"), str)
    return entry if ok else None


def relate(fd: int, raw: bytes, entry: dict) -> Pending:
    """How the pending line stands against the file; LedgerError when the ledger changed since."""
    tail = read_tail(fd)
    if tail.torn and not raw.startswith(tail.torn):
        raise LedgerError("ledger ends with a partial line that is not the interrupted append's; "
                          "repair or truncate the last line, then run verify")
    pending = Pending(line=raw, entry=entry, appended=False, torn=bool(tail.torn), previous=tail.last)
    if tail.last is not None and tail.tip == pending.after and last_line(fd, tail.end) + b"\n" == raw:
        _, previous = tip_of(last_line(fd, tail.end - len(raw)), "the line before the interrupted append")
        return Pending(line=raw, entry=entry, appended=True, torn=False, previous=previous)
    if tail.tip != pending.before:
        raise LedgerError(f"an interrupted append left entry {entry['seq']} pending, but the ledger no longer "
                          f"ends where it was written (it ends at {plural(tail.tip.count, 'entry')}); run verify")
    return pending
