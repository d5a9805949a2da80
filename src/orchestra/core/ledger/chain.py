"""The sign-off ledger: an append-only, hash-chained JSON Lines record of decisions on agent runs.

Each line is one entry in canonical JSON. Every entry carries ``seq`` (its 0-based position),
``prev`` (the previous entry's hash, GENESIS for the first) and ``hash`` (sha256 of the entry
without ``hash``), so altering, removing, inserting or reordering entries breaks the chain.
Removing the *last* entries leaves a valid chain, so a sibling head file records the count and
last hash. Appends are serialised across processes with ``flock`` on a sibling lock file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from orchestra.core.base.canonical import canonical_json
from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import fsync_dir

GENESIS = "0" * 64
CHAIN_FIELDS = ("seq", "prev", "hash")
_TAIL_BLOCK = 64 * 1024


class LedgerError(OrchestraError):
    """The ledger is unreadable or corrupt, so nothing can safely be chained onto it."""


@dataclass(frozen=True)
class Verification:
    """Outcome of Ledger.verify; ``count`` is the number of complete lines, each problem names its line."""

    ok: bool
    count: int
    problems: tuple[str, ...]


def entry_hash(entry_without_hash: dict) -> str:
    """Return the sha256 hex digest of the entry's canonical JSON (the entry must not hold "hash")."""
    return hashlib.sha256(canonical_json(entry_without_hash).encode("utf-8")).hexdigest()


def _utc_now() -> str:
    """Return the current UTC time as ISO-8601 with a trailing 'Z', to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _last_line(fd: int, size: int) -> bytes:
    """Return the file's last complete line without its newline (b"" for an empty file).

    Reads backwards in blocks, so the cost depends on the last line's length, not the file's.
    """
    if size == 0:
        return b""
    if os.pread(fd, 1, size - 1) != b"\n":
        raise LedgerError(
            "ledger ends with a partial line (a write was interrupted); "
            "repair or truncate the last line before appending"
        )
    pos = size - 1
    tail = b""
    while pos > 0:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
        cut = tail.rfind(b"\n")
        if cut >= 0:
            return tail[cut + 1 :]
    return tail


def _parse_line(raw: bytes) -> dict:
    """Parse one ledger line into an entry dict; raise ValueError when it is not one."""
    entry = json.loads(raw.decode("utf-8"))
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    return entry


def _split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Split file content into complete lines and the trailing partial line (b"" if none).

    Splits on b"\\n" only: str.splitlines would also break on U+2028 and friends inside strings.
    """
    *lines, partial = data.split(b"\n")
    return lines, partial


class Ledger:
    """An append-only, hash-chained decision ledger stored at ``path`` (a .jsonl file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def lock_path(self) -> Path:
        """The sibling file flocked to serialise appends (and give readers a consistent view)."""
        return self.path.with_name(self.path.name + ".lock")

    @property
    def head_path(self) -> Path:
        """The sibling JSON file recording {"count", "hash"} of the ledger's last entry."""
        return self.path.with_name(self.path.name + ".head")

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """Hold flock on the lock file; readers skip locking when the directory does not exist."""
        if not exclusive and not self.path.parent.is_dir():
            yield
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the fd releases the flock

    def append(self, fields: dict) -> dict:
        """Append one decision and return the full entry written.

        ``fields`` may hold any JSON-able data but not the chain fields seq/prev/hash (ValueError);
        "time" is added when absent. Raises LedgerError if the file ends in a partial line, its
        last line is not an entry, or the head file disagrees with the tail.
        """
        clash = [name for name in CHAIN_FIELDS if name in fields]
        if clash:
            raise ValueError(f"fields must not set the ledger's own keys: {', '.join(clash)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(exclusive=True):
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                count, prev = self._tail_state(fd)
                entry = self._build_entry(fields, count, prev)
                self._write_line(fd, (canonical_json(entry) + "\n").encode("utf-8"))
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.path.parent)
            self._write_head(count + 1, entry["hash"])
        return entry

    def check_appendable(self) -> None:
        """Raise LedgerError when append() would refuse now (a bad last line, or a head that disagrees)."""
        with self._locked(exclusive=False):
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                self._check_head(0, GENESIS, None)
                return
            try:
                self._tail_state(fd)
            finally:
                os.close(fd)

    def _tail_state(self, fd: int) -> tuple[int, str]:
        """Return (entry count, last hash) from the file's last line, cross-checked with the head."""
        raw = _last_line(fd, os.fstat(fd).st_size)
        if raw == b"":
            count, last, prev_of_last = 0, GENESIS, None
        else:
            try:
                entry = _parse_line(raw)
                count, last, prev_of_last = entry["seq"] + 1, entry["hash"], entry["prev"]
            except (ValueError, KeyError, TypeError) as exc:
                raise LedgerError(
                    f"ledger's last line is not a valid entry ({exc}); refusing to chain onto it"
                ) from exc
        self._check_head(count, last, prev_of_last)
        return count, last

    def _check_head(self, count: int, last: str, prev_of_last: str | None) -> None:
        """Refuse to append when the head disagrees with the tail, unless it lags by exactly one.

        A one-entry lag is what a crash between writing a line and writing the head leaves behind;
        anything else means entries were removed from the end, and appending would hide that.
        """
        head = self._read_head()
        if head is None or (head["count"], head["hash"]) == (count, last):
            return
        if prev_of_last is not None and (head["count"], head["hash"]) == (count - 1, prev_of_last):
            return
        raise LedgerError(
            f"ledger ends at {count} entries but its head records {head['count']} "
            "(entries were removed from the end, or the head was altered); run verify"
        )

    @staticmethod
    def _build_entry(fields: dict, count: int, prev: str) -> dict:
        """Return fields plus time (if absent), seq, prev and hash; round-trips through JSON."""
        entry = json.loads(canonical_json(fields))  # an independent copy, as it will be stored
        entry.setdefault("time", _utc_now())
        entry["seq"] = count
        entry["prev"] = prev
        entry["hash"] = entry_hash(entry)
        return entry

    @staticmethod
    def _write_line(fd: int, line: bytes) -> None:
        """Write the whole line in one os.write on the O_APPEND fd, then fsync it."""
        written = os.write(fd, line)
        if written != len(line):
            raise LedgerError(
                f"short write to ledger ({written} of {len(line)} bytes); the last line is partial"
            )
        os.fsync(fd)

    def _write_head(self, count: int, last_hash: str) -> None:
        """Atomically replace the head file: temp file, fsync, os.replace, fsync the directory."""
        fd, tmp = tempfile.mkstemp(prefix=self.head_path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            try:
                os.write(fd, canonical_json({"count": count, "hash": last_hash}).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.head_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)

    def _read_head(self) -> dict | None:
        """Return the head record, None when there is no head file; LedgerError if it is corrupt."""
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LedgerError(f"head file {self.head_path.name} is unreadable ({exc})") from exc
        valid = isinstance(head, dict) and isinstance(head.get("count"), int)
        if not (valid and isinstance(head.get("hash"), str)):
            raise LedgerError(f"head file {self.head_path.name} does not hold a count and a hash")
        return head

    def _read_bytes(self) -> bytes:
        """Return the whole ledger file, b"" when it does not exist."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def entries(self) -> list[dict]:
        """Return all entries in order ([] when the file does not exist); LedgerError on a bad line."""
        with self._locked(exclusive=False):
            lines, partial = _split_lines(self._read_bytes())
        if partial:
            raise LedgerError(f"line {len(lines) + 1}: incomplete line (a write was interrupted)")
        result = []
        for number, raw in enumerate(lines, start=1):
            try:
                result.append(_parse_line(raw))
            except ValueError as exc:
                raise LedgerError(f"line {number}: not a valid JSON entry ({exc})") from exc
        return result

    def last(self) -> dict | None:
        """Return the last entry, None for an empty ledger; reads only the tail of the file."""
        with self._locked(exclusive=False):
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                raw = _last_line(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
        if raw == b"":
            return None
        try:
            return _parse_line(raw)
        except ValueError as exc:
            raise LedgerError(f"ledger's last line is not a valid entry ({exc})") from exc

    def verify(self) -> Verification:
        """Check every line, the hash chain, the seq numbering and the head file."""
        with self._locked(exclusive=False):
            lines, partial = _split_lines(self._read_bytes())
            problems = _chain_problems(lines)
            if partial:
                problems.append(
                    f"line {len(lines) + 1}: incomplete line without a newline "
                    "(a write was interrupted or the file truncated)"
                )
            problems.extend(self._head_problems(lines))
        return Verification(ok=not problems, count=len(lines), problems=tuple(problems))

    def _head_problems(self, lines: list[bytes]) -> list[str]:
        """Compare the head file, when present, with the ledger's line count and last hash."""
        try:
            head = self._read_head()
        except LedgerError as exc:
            return [str(exc)]
        if head is None:
            return []
        count = len(lines)
        if head["count"] != count:
            why = "entries were removed from the end" if head["count"] > count else "the head was not updated"
            return [f"ledger has {count} entries but its head records {head['count']} ({why})"]
        last = _stored_hash(lines[-1]) if lines else GENESIS
        if last != head["hash"]:
            return [f"line {count}: hash does not match the head's hash (the last entry was replaced)"]
        return []


def _stored_hash(raw: bytes) -> str | None:
    """Return the "hash" recorded on a line, None when the line is not a parseable entry."""
    try:
        value = _parse_line(raw).get("hash")
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _chain_problems(lines: list[bytes]) -> list[str]:
    """Return one message per broken line: unparseable, altered, out of chain or misnumbered."""
    problems: list[str] = []
    prev_hash: str | None = GENESIS  # None: the previous line was unreadable, so prev is unchecked
    for index, raw in enumerate(lines):
        number = index + 1
        try:
            entry = _parse_line(raw)
        except ValueError:
            problems.append(f"line {number}: not a valid JSON entry (garbled or truncated)")
            prev_hash = None
            continue
        problems.extend(_entry_problems(entry, number, prev_hash))
        stored = entry.get("hash")
        prev_hash = stored if isinstance(stored, str) else None
    return problems


def _entry_problems(entry: dict, number: int, prev_hash: str | None) -> list[str]:
    """Check one parsed entry's own hash, its link to the previous line and its seq."""
    problems = []
    body = {key: value for key, value in entry.items() if key != "hash"}
    if entry.get("hash") != entry_hash(body):
        problems.append(f"line {number}: hash does not match its content (entry was altered)")
    if prev_hash is not None and entry.get("prev") != prev_hash:
        if number == 1:
            problems.append("line 1: prev is not the genesis hash (the first entry was removed or replaced)")
        else:
            problems.append(
                f"line {number}: prev does not match line {number - 1}'s hash "
                "(an entry was removed, inserted or reordered)"
            )
    if entry.get("seq") != number - 1:
        problems.append(
            f"line {number}: seq is {entry.get('seq')!r}, expected {number - 1} "
            "(entries were removed, inserted or reordered)"
        )
    return problems
