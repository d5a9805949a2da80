"""One ledger line: its canonical JSON, its hash, and reading lines back from the file.

An entry's hash is the sha256 of the canonical JSON of the entry without ``hash`` and ``sig``.
A stored line is the canonical JSON of the whole entry, so cutting the ``hash`` and ``sig`` members
out of the line's bytes gives exactly the hashed bytes; verify hashes those instead of serialising
every entry again. A cut can only make a line fail (the bytes left would hold a member no honest
entry hashes), never pass, so a line that is not canonical is checked the slow way instead.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from orchestra.core.base.canonical import canonical_json
from orchestra.core.base.errors import OrchestraError

GENESIS = "0" * 64
CHAIN_FIELDS = ("seq", "prev", "hash")
# Set by the ledger itself, never by a caller: the chain, the signature and the anchor marker.
RESERVED_FIELDS = (*CHAIN_FIELDS, "sig", "signer", "anchored")
UNHASHED_FIELDS = ("hash", "sig")
_TAIL_BLOCK = 64 * 1024
_scan_once = json.JSONDecoder().scan_once


class LedgerError(OrchestraError):
    """The ledger is unreadable or corrupt, so nothing can safely be chained onto it."""


def entry_hash(entry_without_hash: dict) -> str:
    """Return the sha256 hex digest of the entry's canonical JSON (the entry must not hold "hash")."""
    return hashlib.sha256(canonical_json(entry_without_hash).encode("utf-8")).hexdigest()


def hashed_body(entry: dict) -> dict:
    """The part of an entry its hash covers: everything but hash and sig."""
    return {key: value for key, value in entry.items() if key not in UNHASHED_FIELDS}


def utc_now() -> str:
    """Return the current UTC time as ISO-8601 with a trailing 'Z', to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_line(entry: dict) -> bytes:
    """The entry as a stored line: canonical JSON, UTF-8, newline."""
    return (canonical_json(entry) + "\n").encode("utf-8")


def parse_line(raw: bytes) -> dict:
    """Parse one ledger line into an entry dict; raise ValueError when it is not one.

    A canonical line goes straight to json's C scanner (verify parses every line, so the
    wrappers around it count); anything else takes json.loads, with its error message.
    """
    try:
        text = raw.decode("utf-8")
        entry, end = _scan_once(text, 0)
        if end == len(text) and type(entry) is dict:
            return entry
    except (ValueError, StopIteration):
        pass
    entry = json.loads(raw)
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    return entry


def _span(raw: bytes, member: bytes) -> tuple[int, int]:
    """Where member and the comma joining it to its neighbour are in raw ((0, 0) when absent)."""
    at = raw.find(member)
    if at < 0:
        return 0, 0
    end = at + len(member)
    if raw[at - 1 : at] == b",":
        at -= 1
    elif raw[end : end + 1] == b",":
        end += 1
    return at, end


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Split file content into complete lines and the trailing partial line (b"" if none).

    Splits on b"\\n" only: str.splitlines would also break on U+2028 and friends inside strings.
    """
    *lines, partial = data.split(b"\n")
    return lines, partial


def _member(name: str, value: object) -> bytes:
    """The bytes `"name":value` take in a canonical line (for a string needing escapes, bytes that will
    not be found: the line is then checked the slow way)."""
    if type(value) is str:
        return f'"{name}":"{value}"'.encode("utf-8", "surrogatepass")
    return f'"{name}":{canonical_json(value)}'.encode("utf-8", "surrogatepass")


def _cut(raw: bytes, member: bytes) -> bytes:
    """raw without member and the comma that joins it to its neighbour (raw unchanged if absent)."""
    at, end = _span(raw, member)
    return raw[:at] + raw[end:]


def hash_matches(raw: bytes, entry: dict) -> bool:
    """Whether the entry's stored hash is the hash of its content (raw is its stored line)."""
    stored = entry.get("hash")
    if type(stored) is not str:
        return False
    body = _cut(raw, _member("hash", stored))
    if "sig" in entry:
        body = _cut(body, _member("sig", entry["sig"]))
    if hashlib.sha256(body).hexdigest() == stored:
        return True
    try:
        return entry_hash(hashed_body(entry)) == stored  # a line not in canonical form
    except UnicodeEncodeError:  # a lone surrogate: no entry orchestra wrote
        return False


def _after_last_newline(fd: int, end: int) -> bytes:
    """The bytes in [0, end) after the last newline among them; reads backwards in blocks."""
    pos, tail = end, b""
    while pos > 0:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
        cut = tail.rfind(b"\n")
        if cut >= 0:
            return tail[cut + 1 :]
    return tail


def ends_with_newline(fd: int, size: int) -> bool:
    """Whether the file is empty or its last byte is a newline."""
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def last_line(fd: int, size: int) -> bytes:
    """The file's last complete line without its newline (b"" for an empty file); the file must end
    with a newline. The cost depends on the last line's length, not the file's."""
    return _after_last_newline(fd, size - 1) if size else b""


def partial_tail(fd: int, size: int) -> bytes:
    """The bytes after the file's last newline (b"" when it ends with one)."""
    return b"" if ends_with_newline(fd, size) else _after_last_newline(fd, size)


def describe_os_error(path: Path, error: OSError) -> str:
    """One line saying what is wrong with the ledger at path (or the file next to it error names)."""
    where = Path(error.filename) if error.filename else path
    if error.errno == errno.EISDIR:
        return f"the ledger path {where} is a directory, not a file"
    if error.errno == errno.ENOTDIR:
        return f"the ledger path {where} is not usable: a part of it is a file, not a directory"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"the ledger at {where} cannot be accessed: permission denied"
    return f"the ledger at {where} cannot be used: {error.strerror or error}"


@contextmanager
def os_errors_as_ledger_errors(path: Path) -> Iterator[None]:
    """Turn any OSError inside the block into a LedgerError with a one-line reason."""
    try:
        yield
    except LedgerError:
        raise
    except OSError as error:
        raise LedgerError(describe_os_error(path, error)) from error
