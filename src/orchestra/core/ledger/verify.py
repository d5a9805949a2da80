"""Verifying a ledger: its lines, chain and signatures, its head, its anchor in git, git's merge commits.

The history walk (`git log` over every ref) runs in a thread while this one scans the lines; the
scan itself runs in parts in parallel for a big ledger. A pending line (an append a crash
interrupted) counts as the ledger's next entry, and the head and the anchor may then lag it by
one: that is what the next append completes. The same lag without a pending line is a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from orchestra.core.base.errors import OrchestraError
from orchestra.core.ledger.anchor import AnchorState
from orchestra.core.ledger.crosscheck import Accept, Trailers
from orchestra.core.ledger.lines import LedgerError, partial_tail
from orchestra.core.ledger.scan import Options, PartScan, Scan, scan_file, scan_lines, stitch
from orchestra.core.ledger.sidefiles import EMPTY, Tip
from orchestra.core.ledger.signers import SignatureChecker, load_allowed_signers
from orchestra.core.ledger.signing import SigningConfig
from orchestra.core.ledger.tail import parse_pending
from orchestra.core.base.words import plural

if TYPE_CHECKING:
    from orchestra.core.ledger.chain import Ledger

T = TypeVar("T")


@dataclass(frozen=True)
class Verification:
    """Outcome of Ledger.verify; ``count`` is the number of complete lines, each problem names its line.

    ``signed`` counts entries whose signature was checked (or failed); ``anchor`` is the ref the
    ledger agrees with (None when it has no anchor); ``notes`` say what verify could not prove.
    """

    ok: bool
    count: int
    problems: tuple[str, ...]
    signed: int = 0
    notes: tuple[str, ...] = ()
    anchor: str | None = None


@dataclass
class _Facts:
    """What was read under the lock."""

    exists: bool
    count: int
    scan: Scan
    torn: bytes
    head: Tip | None | LedgerError
    lag: Tip | None              # the tip before a pending line: head and anchor may still record it
    pending_notes: list[str]
    pending_problems: list[str]


class Background(Generic[T]):
    """Runs one function in a thread; result() waits and re-raises what it raised."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work, self._value, self._error = work, None, None
        self._thread = threading.Thread(target=self._run, name="orchestra-ledger-verify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as error:  # handed to result()
            self._error = error

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def verify_ledger(ledger: Ledger, require_signed: bool) -> Verification:
    """Verify the ledger (the caller turns OSError into LedgerError)."""
    walk_job = Background(ledger.history.walk) if ledger.history else None  # the longest wait: start it first
    notes: list[str] = []
    checker, unusable = _checker(ledger.signing_config(), notes)
    with ledger.side.locked(exclusive=False):
        anchor_job = Background(ledger.anchor.read) if ledger.anchor else None
        facts = _read(ledger, Options(checker, accepts=ledger.history is not None))
        anchor_state = _outcome(anchor_job)
    problems = [*facts.scan.problems, *_torn_problem(facts), *facts.pending_problems,
                *_signature_problems(facts.scan, require_signed, unusable), *_head_problems(facts)]
    if unusable and not facts.scan.signed:
        notes.append(unusable)
    anchored = _anchor_problems(ledger, facts, anchor_state, problems, notes)
    problems += _history_problems(ledger, facts.scan, walk_job)
    return Verification(ok=not problems, count=facts.count, problems=tuple(problems), signed=facts.scan.signed,
                        notes=(*facts.pending_notes, *notes), anchor=anchored)


def _torn_problem(facts: _Facts) -> list[str]:
    if not facts.torn:
        return []
    return [f"line {facts.count + 1}: incomplete line without a newline (a write was interrupted or the file truncated)"]


def _outcome(job: Background | None) -> object:
    """The job's result, or the error it raised (None without a job)."""
    if job is None:
        return None
    try:
        return job.result()
    except (OrchestraError, OSError) as error:
        return error


def _checker(config: SigningConfig, notes: list[str]) -> tuple[SignatureChecker | None, str]:
    """The allowed signers git's configuration names, or None and why it cannot be used ("" if unset)."""
    if config.allowed_signers is None:
        return None, ""
    where = f"{config.allowed_signers} (gpg.ssh.allowedSignersFile)"
    try:
        allowed = load_allowed_signers(config.allowed_signers)
    except (OSError, ValueError) as error:
        return None, f"the allowed signers file {where} cannot be used: {error}"
    if config.allowed_signers_scope in ("local", "worktree"):
        notes.append(f"the allowed signers file is set in this repository's own git config ({where}); "
                     "whoever can write the ledger can change that, so set it in your global config")
    return SignatureChecker(allowed, str(config.allowed_signers)), ""


def _read(ledger: Ledger, options: Options) -> _Facts:
    """Scan the file and the pending line, and read the head (the caller holds the lock)."""
    try:
        fd = os.open(ledger.path, os.O_RDONLY)
    except FileNotFoundError:
        fd = None
    parts: list[PartScan] = []
    torn = b""
    try:
        if fd is not None:
            size = os.fstat(fd).st_size
            torn = partial_tail(fd, size)
            parts = scan_file(fd, size - len(torn), options)
    finally:
        if fd is not None:
            os.close(fd)
    count = sum(part.count for part in parts)
    facts = _Facts(fd is not None, count, stitch(parts), torn, None, None, [], [])
    try:
        facts.head = ledger.side.read_head()
    except LedgerError as error:
        facts.head = error
    _add_pending(ledger, facts, parts, options)
    return facts


def _add_pending(ledger: Ledger, facts: _Facts, parts: list[PartScan], options: Options) -> None:
    """Count a pending line that fits the ledger's end as its next entry (and allow the lag it explains)."""
    raw = ledger.side.read_pending()
    if raw is None:
        return
    entry = parse_pending(raw)
    tip = _tip(facts.scan)
    if entry is None:
        facts.pending_notes.append("an unreadable pending line is left from an interrupted append; "
                                   "the next append or `orchestra ledger recover` discards it")
        return
    before, after = Tip(entry["seq"], entry["prev"]), Tip(entry["seq"] + 1, entry["hash"])
    if tip == before and (not facts.torn or raw.startswith(facts.torn)):
        facts.torn = b""
        facts.scan = stitch([*parts, scan_lines([raw[:-1]], options)])
    elif tip != after:
        facts.pending_problems.append(
            f"a pending line (entry {entry['seq']}, from an interrupted append) does not fit the ledger's end "
            f"at {plural(tip.count, 'entry')}: the ledger was changed after the crash")
        return
    facts.lag = before
    facts.pending_notes.append(f"an append was interrupted (entry {entry['seq']}); the next append or "
                               "`orchestra ledger recover` completes it")


def _tip(scan: Scan) -> Tip:
    return Tip(scan.count, scan.last_hash) if scan.count else EMPTY  # type: ignore[arg-type]


def _signature_problems(scan: Scan, require_signed: bool, unusable: str) -> list[str]:
    problems = []
    if scan.unchecked:
        why = unusable or "git config names no allowed signers file (gpg.ssh.allowedSignersFile)"
        problems.append(f"{plural(scan.unchecked, 'entry')} {'is' if scan.unchecked == 1 else 'are'} signed but "
                        f"{'its signature' if scan.unchecked == 1 else 'their signatures'} cannot be checked: {why}")
    if require_signed and scan.unsigned:
        lines = ", ".join(map(str, scan.unsigned_first)) + (", …" if scan.unsigned > len(scan.unsigned_first) else "")
        problems.append(f"{scan.unsigned} of {plural(scan.count, 'entry')} are not signed (line {lines}), "
                        "and signatures are required")
    return problems


def _head_problems(facts: _Facts) -> list[str]:
    """Compare the head file, when present, with the ledger's count and last hash."""
    head, tip = facts.head, _tip(facts.scan)
    if isinstance(head, LedgerError):
        return [str(head)]
    if head is None or head in (tip, facts.lag):
        return []
    if head.count != tip.count:
        why = "entries were removed from the end" if head.count > tip.count else "the head was not updated"
        return [f"ledger has {plural(tip.count, 'entry')} but its head records {head.count} ({why})"]
    return [f"line {tip.count}: hash does not match the head's hash (the last entry was replaced)"]


def _anchor_problems(ledger: Ledger, facts: _Facts, state: object, problems: list[str],
                     notes: list[str]) -> str | None:
    """Compare the anchor in git with the ledger; the ref when they agree."""
    if ledger.anchor is None:
        return None
    ref, tip = ledger.anchor.ref, _tip(facts.scan)
    if isinstance(state, (OrchestraError, OSError)):
        problems.append(str(state))
    elif state is None:
        _missing_anchor(ref, facts, problems, notes)
    elif isinstance(state, AnchorState) and state.tip in (tip, facts.lag):
        return ref
    elif isinstance(state, AnchorState):
        problems.append(_anchor_disagrees(ref, facts, state.tip, tip))
    return None


def _missing_anchor(ref: str, facts: _Facts, problems: list[str], notes: list[str]) -> None:
    if facts.scan.anchored_first is not None:
        problems.append(f"entries from line {facts.scan.anchored_first} on were anchored in git at {ref}, "
                        "but that ref is gone (deleted, or the ledger was copied from another repository)")
    elif facts.scan.count:
        notes.append(f"the ledger is not anchored in git yet (it predates the anchor); the next append "
                     f"anchors it at {ref}")


def _anchor_disagrees(ref: str, facts: _Facts, anchored: Tip, tip: Tip) -> str:
    where = f"its anchor in git ({ref}) records {anchored.count}"
    if tip.count == 0 and not facts.exists and facts.head is None:
        return (f"the ledger file and its head file are missing, but its anchor in git ({ref}) records "
                f"{plural(anchored.count, 'entry')}: the ledger was deleted")
    if anchored.count > tip.count:
        return f"ledger has {plural(tip.count, 'entry')} but {where}: entries were removed"
    if anchored.count < tip.count:
        return f"ledger has {plural(tip.count, 'entry')} but {where}: entries were added without being anchored"
    return (f"line {tip.count}: hash does not match the anchor in git ({ref}): entries were altered, "
            "inserted or removed and the chain recomputed")


def _history_problems(ledger: Ledger, scan: Scan, walk_job: Background | None) -> list[str]:
    if ledger.history is None or walk_job is None:
        return []
    walked = _outcome(walk_job)
    if isinstance(walked, BaseException) or not isinstance(walked, dict):
        return [f"git's history could not be read to check merge commits: {walked}"]
    accepts = [Accept(line, sha, decision, run) for line, sha, decision, run in scan.accepts]
    trailers: dict[str, Trailers] = walked
    return ledger.history.problems(accepts, trailers)
