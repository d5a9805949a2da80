"""The sign-off ledger: an append-only, hash-chained JSON Lines record of decisions on agent runs.

Each line is one entry in canonical JSON. Every entry carries ``seq`` (its 0-based position),
``prev`` (the previous entry's hash, GENESIS for the first) and ``hash`` (sha256 of the entry
without ``hash`` and ``sig``), so altering, removing, inserting or reordering entries breaks the
chain. Removing the *last* entries leaves a valid chain, so a sibling head file records the count
and last hash, and so does an anchor in git (when the ledger has one); entries can be signed with
the conductor's SSH key. Appends are serialised across processes with ``flock`` on a lock file,
and each is staged in a pending file first, so a crash at any step is completed, never repeated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestra.core.base.canonical import canonical_json
from orchestra.core.base.faults import declare, fault_point
from orchestra.core.base.files import fsync_dir
from orchestra.core.ledger.anchor import AnchorState, GitAnchor
from orchestra.core.ledger.crosscheck import GitHistory
from orchestra.core.ledger.lines import (
    CHAIN_FIELDS,
    GENESIS,
    RESERVED_FIELDS,
    LedgerError,
    encode_line,
    ends_with_newline,
    entry_hash,
    last_line,
    os_errors_as_ledger_errors,
    parse_line,
    split_lines,
    utc_now,
)
from orchestra.core.ledger.sidefiles import SideFiles, Tip
from orchestra.core.ledger.signing import SigningConfig, SshSigner
from orchestra.core.ledger.tail import Pending, Tail, parse_pending, read_tail, relate
from orchestra.core.base.words import plural

if TYPE_CHECKING:
    from orchestra.core.ledger.verify import Verification

__all__ = ["CHAIN_FIELDS", "GENESIS", "Ledger", "LedgerError", "canonical_json", "entry_hash"]

AFTER_PENDING = declare("ledger.after-pending")  # the line is staged, not yet in the ledger
AFTER_LINE = declare("ledger.after-line")        # the line is in the ledger; head and anchor lag
AFTER_HEAD = declare("ledger.after-head")        # the head is updated; the anchor lags
AFTER_ANCHOR = declare("ledger.after-anchor")    # all done but removing the pending file


class Ledger:
    """An append-only, hash-chained decision ledger stored at ``path`` (a .jsonl file).

    Alone it has no anchor and never signs; `open_ledger(repo)` wires both, and the git cross-check.
    """

    def __init__(self, path: Path, anchor: GitAnchor | None = None,
                 signing: Callable[[], SigningConfig] | None = None, history: GitHistory | None = None) -> None:
        self.path = Path(path)
        self.anchor, self.history = anchor, history
        self._signing = signing
        self.side = SideFiles(self.path)

    @property
    def lock_path(self) -> Path:
        """The sibling file flocked to serialise appends (and give readers a consistent view)."""
        return self.side.lock_path

    @property
    def head_path(self) -> Path:
        """The sibling JSON file recording {"count", "hash"} of the ledger's last entry."""
        return self.side.head_path

    @property
    def pending_path(self) -> Path:
        """The sibling file holding the line of an append in progress."""
        return self.side.pending_path

    def signing_config(self) -> SigningConfig:
        """The signing settings in force now (read from git each time; none for a bare Ledger)."""
        return self._signing() if self._signing else SigningConfig()

    def check_path(self) -> None:
        """Raise LedgerError when the ledger path (or its directory) is not usable as a file."""
        with os_errors_as_ledger_errors(self.path):
            if self.path.parent.exists() and not self.path.parent.is_dir():
                raise NotADirectoryError(20, "Not a directory", str(self.path.parent))
            if self.path.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(self.path))
            if self.path.exists():
                os.close(os.open(self.path, os.O_RDONLY))

    # --- appending ----------------------------------------------------------------------------

    def append(self, fields: dict) -> dict:
        """Append one decision and return the full entry written.

        ``fields`` may hold any JSON-able data but not the ledger's own keys (ValueError); "time" is
        added when absent. An interrupted append is completed first; appending a ``decision`` id the
        last entry already records returns that entry (a retry after a crash is not written twice).
        Raises LedgerError, before anything changes, when the ledger cannot be chained onto.
        """
        clash = [name for name in RESERVED_FIELDS if name in fields]
        if clash:
            raise ValueError(f"fields must not set the ledger's own keys: {', '.join(clash)}")
        self.check_path()
        with os_errors_as_ledger_errors(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.side.locked(exclusive=True):
                self._recover_locked()
                tail, anchor_state = self._appendable()
                if _is_retry(fields, tail.last):
                    return tail.last  # type: ignore[return-value]
                signer = self._signer()
                entry = self._build_entry(fields, tail.tip, signer)
                line = encode_line(entry)
                self.side.write_pending(line)
                fault_point(AFTER_PENDING)
                self._complete(Pending(line, entry, appended=False, torn=False, previous=tail.last), anchor_state)
        return entry

    def check_appendable(self) -> None:
        """Raise LedgerError when append() would refuse now: a bad tail, a head or anchor that disagrees,
        an interrupted append that cannot be completed, or signing that is configured but fails."""
        self.check_path()
        with os_errors_as_ledger_errors(self.path), self.side.locked(exclusive=False):
            pending = self._pending()
            if pending is None:
                self._appendable()
            else:
                self._check_sides(pending.before, pending.after, pending.previous)
        signer = self._signer()
        if signer is not None:
            signer.trial()

    def recover(self) -> str | None:
        """Complete (or discard, when unreadable) an append a crash interrupted; say what was done."""
        self.check_path()
        if not self.pending_path.exists():
            return None
        with os_errors_as_ledger_errors(self.path), self.side.locked(exclusive=True):
            return self._recover_locked()

    def _recover_locked(self) -> str | None:
        raw = self.side.read_pending()
        if raw is None:
            return None
        if parse_pending(raw) is None:
            self.side.remove_pending()
            return "discarded an unreadable pending line (its append had not reached the ledger)"
        pending = self._pending()
        assert pending is not None
        anchor_state = self._check_sides(pending.before, pending.after, pending.previous)
        self._complete(pending, anchor_state)
        return f"completed the interrupted append of entry {pending.entry['seq']} (line {pending.after.count})"

    def _pending(self) -> Pending | None:
        """The interrupted append, related to the file; LedgerError when it no longer fits."""
        raw = self.side.read_pending()
        entry = parse_pending(raw) if raw is not None else None
        if raw is None or entry is None:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(os.devnull, os.O_RDONLY)  # a missing ledger reads as an empty one
        try:
            return relate(fd, raw, entry)
        finally:
            os.close(fd)

    def _appendable(self) -> tuple[Tail, AnchorState | None]:
        """The file's end, checked against the head and the anchor (no interrupted append pending)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return Tail(Tip(0, GENESIS), None, b"", 0), self._check_sides(Tip(0, GENESIS), None, None)
        try:
            tail = read_tail(fd)
        finally:
            os.close(fd)
        if tail.torn:
            raise LedgerError("ledger ends with a partial line (a write was interrupted); "
                              "repair or truncate the last line before appending")
        return tail, self._check_sides(tail.tip, None, tail.last)

    def _check_sides(self, before: Tip, after: Tip | None, last: dict | None) -> AnchorState | None:
        """Refuse unless the head and the anchor record before (or after, mid-append); the anchor state."""
        head = self.side.read_head()
        if head is not None and head not in (before, after):
            raise LedgerError(f"ledger ends at {plural(before.count, 'entry')} but its head records {head.count} "
                              "(entries were removed from the end, or the head was altered); run verify")
        if self.anchor is None:
            return None
        state = self.anchor.read()
        if state is None and last is not None and last.get("anchored") is True:
            raise LedgerError(f"the ledger was anchored in git at {self.anchor.ref}, but that ref is gone; run verify")
        if state is not None and state.tip not in (before, after):
            raise LedgerError(f"ledger ends at {plural(before.count, 'entry')} but its anchor in git "
                              f"({self.anchor.ref}) "
                              f"records {state.tip.count}; run verify")
        return state

    def _signer(self) -> SshSigner | None:
        config = self.signing_config()
        return SshSigner(config) if config.enabled else None

    def _build_entry(self, fields: dict, tip: Tip, signer: SshSigner | None) -> dict:
        """fields plus time (if absent), the anchored marker, the signer, seq, prev, hash and sig."""
        entry = json.loads(canonical_json(fields))  # an independent copy, as it will be stored
        entry.setdefault("time", utc_now())
        if self.anchor is not None:
            entry["anchored"] = True
        if signer is not None:
            entry["signer"] = signer.signer_field()
        entry["seq"], entry["prev"] = tip.count, tip.hash
        entry["hash"] = entry_hash(entry)
        if signer is not None:
            entry["sig"] = signer.sign(entry["hash"].encode("ascii"), entry["signer"]["key"])
        return entry

    def _complete(self, pending: Pending, anchor_state: AnchorState | None) -> None:
        """Do the steps of the append not done yet: the line, the head, the anchor, then forget it."""
        try:
            if not pending.appended:
                self._write_line(pending.line)
                fault_point(AFTER_LINE)
            if self.side.read_head() != pending.after:
                self.side.write_head(pending.after)
                fault_point(AFTER_HEAD)
            if self.anchor is not None and (anchor_state is None or anchor_state.tip != pending.after):
                self.anchor.advance(anchor_state, pending.after)
                fault_point(AFTER_ANCHOR)
        except (LedgerError, OSError) as error:
            if self._untouched():
                self.side.remove_pending()
                raise
            raise LedgerError(f"entry {pending.entry['seq']} was written, but {error}; "
                              "`orchestra ledger recover` or the next decision completes it") from error
        self.side.remove_pending()

    def _untouched(self) -> bool:
        """After a failed append: whether the ledger file shows no trace of the pending line."""
        try:
            pending = self._pending()
        except (LedgerError, OSError):
            return False  # unsure: keep the pending file for recover()
        return pending is None or not (pending.appended or pending.torn)

    def _write_line(self, line: bytes) -> None:
        """Append the whole line, cutting off a torn copy of it first, then fsync."""
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            tail = read_tail(fd)
            if tail.torn:
                os.ftruncate(fd, tail.end)
            written = os.write(fd, line)
            if written != len(line):
                raise LedgerError(f"short write to ledger ({written} of {len(line)} bytes); the last line is partial")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)

    # --- reading ------------------------------------------------------------------------------

    def lines(self) -> list[bytes]:
        """Every entry's line, unparsed ([] when the file does not exist); LedgerError on a cut-off last line."""
        self.check_path()
        with os_errors_as_ledger_errors(self.path), self.side.locked(exclusive=False):
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                data = b""
        lines, partial = split_lines(data)
        if partial:
            raise LedgerError(f"line {len(lines) + 1}: incomplete line (a write was interrupted)")
        return lines

    def entries(self) -> list[dict]:
        """Return all entries in order ([] when the file does not exist); LedgerError on a bad line."""
        result = []
        for number, raw in enumerate(self.lines(), start=1):
            try:
                result.append(parse_line(raw))
            except ValueError as exc:
                raise LedgerError(f"line {number}: not a valid JSON entry ({exc})") from exc
        return result

    def last(self) -> dict | None:
        """Return the last entry, None for an empty ledger; reads only the tail of the file."""
        self.check_path()
        with os_errors_as_ledger_errors(self.path), self.side.locked(exclusive=False):
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                size = os.fstat(fd).st_size
                raw = last_line(fd, size) if ends_with_newline(fd, size) else None
            finally:
                os.close(fd)
        if raw is None:
            raise LedgerError("ledger ends with a partial line (a write was interrupted)")
        if raw == b"":
            return None
        try:
            return parse_line(raw)
        except ValueError as exc:
            raise LedgerError(f"ledger's last line is not a valid entry ({exc})") from exc

    def verify(self, require_signed: bool = False) -> Verification:
        """Check every line, the chain, seq, signatures, the head, the anchor and git's merge commits."""
        self.check_path()
        with os_errors_as_ledger_errors(self.path):
            from orchestra.core.ledger.verify import verify_ledger  # msgspec and the git walk load here only
            return verify_ledger(self, require_signed)


def _is_retry(fields: dict, last: dict | None) -> bool:
    """Whether fields repeat the decision the last entry already records."""
    decision = fields.get("decision")
    return (decision is not None and last is not None and last.get("decision") == decision
            and last.get("action") == fields.get("action"))
