"""Scanning the ledger's lines: parse, hash, chain links, seq, signatures, and what the git check needs.

A big ledger is cut at line boundaries into parts scanned at the same time, the first in this
process and each other one by a helper process (`python -m orchestra.core.ledger.scan`, a job on
stdin, the part's findings as JSON on stdout); parsing JSON is the cost and holds the GIL, so
threads would not help. The parts are then stitched: each part's first prev is checked against
the previous part's last hash, and seq against the absolute position.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from orchestra.core.ledger.fields import ChainFields, line_hash_matches, parse_chain_fields
from orchestra.core.ledger.lines import GENESIS
from orchestra.core.ledger.signers import AllowedKey, SignatureChecker

PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this, one process scans faster than two start
SIGNED_COST = 8  # checking signatures makes a byte about this much dearer to scan
MAX_PARTS = 4
_HEAD_START = 0.1  # of a part: how much more this process scans while a helper starts
_BLOCK = 64 * 1024
_READ_BLOCK = 1024 * 1024
_SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

TEMPLATES = {
    "garbled": "line {n}: not a valid JSON entry (garbled or truncated)",
    "altered": "line {n}: hash does not match its content (entry was altered)",
    "genesis": "line 1: prev is not the genesis hash (the first entry was removed or replaced)",
    "prev": "line {n}: prev does not match line {p}'s hash (an entry was removed, inserted or reordered)",
    "seq": "line {n}: seq is {detail}, expected {p} (entries were removed, inserted or reordered)",
    "sig": "line {n}: {detail}",
}
_ORDER = {"garbled": 0, "altered": 1, "genesis": 2, "prev": 2, "seq": 3, "sig": 4}


@dataclass(frozen=True)
class Options:
    """What a scan checks beyond the chain: signatures (against checker) and accepts (for the git check)."""

    checker: SignatureChecker | None = None
    accepts: bool = False

    def to_json(self) -> dict:
        checker = self.checker
        return {"allowed": None if checker is None else [key.to_json() for key in checker.allowed],
                "source": None if checker is None else checker.source, "accepts": self.accepts}

    @staticmethod
    def from_json(job: dict) -> Options:
        allowed = job["allowed"]
        checker = None if allowed is None else SignatureChecker([AllowedKey.from_json(i) for i in allowed], job["source"])
        return Options(checker, job["accepts"])


@dataclass
class PartScan:
    """What scanning one run of consecutive lines found; indexes are 0-based within the part."""

    count: int = 0
    problems: list[list] = field(default_factory=list)    # [index, kind, detail]
    seqs: list = field(default_factory=list)              # each line's seq (None when garbled)
    first_parsed: bool = False
    first_prev: object = None
    last_hash: str | None = None
    accepts: list[list] = field(default_factory=list)     # [index, merge_commit, decision, run]
    signed: int = 0
    unchecked: int = 0                                    # signed, but there was nothing to check against
    unsigned: int = 0
    unsigned_first: list[int] = field(default_factory=list)
    anchored_first: int | None = None


@dataclass
class Scan:
    """The stitched findings for the whole ledger; line numbers are 1-based."""

    count: int
    problems: list[str]
    last_hash: str | None
    accepts: list[tuple[int, object, object, object]]
    signed: int
    unchecked: int
    unsigned: int
    unsigned_first: list[int]
    anchored_first: int | None


def scan_lines(lines: list[bytes], options: Options, part: PartScan | None = None) -> PartScan:
    """Check each line on its own and against the line before it, continuing part when given (the
    part's first line's link is left to stitch)."""
    part = part if part is not None else PartScan()
    base, prev_hash = part.count, part.last_hash
    for index, raw in enumerate(lines, start=base):
        try:
            entry = parse_chain_fields(raw)
        except ValueError:
            part.problems.append([index, "garbled", ""])
            part.seqs.append(None)
            prev_hash = None
            continue
        if not line_hash_matches(raw, entry):
            part.problems.append([index, "altered", ""])
        if index == 0:
            part.first_parsed, part.first_prev = True, entry.prev
        elif prev_hash is not None and entry.prev != prev_hash:
            part.problems.append([index, "prev", ""])
        part.seqs.append(entry.seq)
        prev_hash = entry.hash if isinstance(entry.hash, str) else None
        _note_extras(part, index, entry, options)
    part.count, part.last_hash = base + len(lines), prev_hash
    return part


def _note_extras(part: PartScan, index: int, entry: ChainFields, options: Options) -> None:
    """Record the entry's signature state, its accept fields and the anchored marker."""
    checker = options.checker
    if options.accepts and entry.action == "accept":
        part.accepts.append([index, entry.merge_commit, entry.decision, entry.run])
    if entry.anchored is True and part.anchored_first is None:
        part.anchored_first = index
    sig, signer = entry.sig, entry.signer
    if sig is None and signer is None:
        part.unsigned += 1
        if len(part.unsigned_first) < 5:
            part.unsigned_first.append(index)
    elif sig is None:
        who = signer.get("principal") if isinstance(signer, dict) else signer
        part.problems.append([index, "sig", f"it names signer {who} but carries no signature (it was stripped)"])
    else:
        part.signed += 1
        if checker is None:
            part.unchecked += 1
            return
        stored = entry.hash
        detail = checker.problem(stored if isinstance(stored, str) else "", signer, sig, entry.time)
        if detail:
            part.problems.append([index, "sig", detail])


def stitch(parts: list[PartScan]) -> Scan:
    """Join consecutive parts into the whole ledger's findings."""
    keyed: list[tuple[int, int, str]] = []
    base, last = 0, GENESIS
    scan = Scan(0, [], None, [], 0, 0, 0, [], None)
    for part in parts:
        if part.count and part.first_parsed and last is not None and part.first_prev != last:
            keyed.append((base, _ORDER["prev"], _text("genesis" if base == 0 else "prev", base, "")))
        keyed += [(base + index, _ORDER[kind], _text(kind, base + index, detail)) for index, kind, detail in part.problems]
        keyed += _seq_problems(part, base)
        _add_counts(scan, part, base)
        if part.count:
            last = part.last_hash
        base += part.count
    keyed.sort(key=lambda item: item[:2])
    scan.count, scan.problems, scan.last_hash = base, [text for _, _, text in keyed], last if base else None
    return scan


def _seq_problems(part: PartScan, base: int) -> list[tuple[int, int, str]]:
    """A problem for each line whose seq is not its position (garbled lines have their own)."""
    if part.seqs == list(range(base, base + part.count)):
        return []
    garbled = {index for index, kind, _ in part.problems if kind == "garbled"}
    return [(base + index, _ORDER["seq"], _text("seq", base + index, repr(seq)))
            for index, seq in enumerate(part.seqs) if index not in garbled and seq != base + index]


def _add_counts(scan: Scan, part: PartScan, base: int) -> None:
    scan.accepts += [(base + index + 1, sha, decision, run) for index, sha, decision, run in part.accepts]
    scan.signed += part.signed
    scan.unchecked += part.unchecked
    scan.unsigned += part.unsigned
    scan.unsigned_first = (scan.unsigned_first + [base + index + 1 for index in part.unsigned_first])[:5]
    if scan.anchored_first is None and part.anchored_first is not None:
        scan.anchored_first = base + part.anchored_first + 1


def _text(kind: str, index: int, detail: str) -> str:
    return TEMPLATES[kind].format(n=index + 1, p=index, detail=detail)


# --- the file, in parts -------------------------------------------------------------------------


def scan_file(fd: int, end: int, options: Options) -> list[PartScan]:
    """Scan the complete lines in [0, end) of the open ledger file (end is just after a newline).

    Helpers read the same open file (they inherit fd), so every part comes from one file."""
    bounds = _bounds(fd, end * (SIGNED_COST if options.checker else 1), end)
    helpers = [_start_helper(fd, start, stop, options) for start, stop in bounds[1:]]
    parts = [_scan_range(fd, *bounds[0], options)]
    for (start, stop), helper in zip(bounds[1:], helpers):
        parts.append(_finish_helper(helper) or _scan_range(fd, start, stop, options))
    return parts


def _bounds(fd: int, work: int, end: int) -> list[tuple[int, int]]:
    """Byte ranges of whole lines, one per part (as many as work, the bytes weighted by their cost, pays for)."""
    wanted = 1 if work < PARALLEL_MIN_BYTES else min(_cores(), MAX_PARTS, work // PARALLEL_MIN_BYTES)
    cuts = [0]
    for k in range(1, wanted):
        share = (k + _HEAD_START) / (wanted + _HEAD_START)  # this process starts scanning first
        cut = _next_line_start(fd, int(end * share), end)
        if cut > cuts[-1] and cut < end:
            cuts.append(cut)
    return list(zip(cuts, [*cuts[1:], end]))


def _cores() -> int:
    """The processors this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _next_line_start(fd: int, pos: int, end: int) -> int:
    while pos < end:
        block = os.pread(fd, min(_BLOCK, end - pos), pos)
        newline = block.find(b"\n")
        if newline >= 0:
            return pos + newline + 1
        pos += len(block)
    return end


def _scan_range(fd: int, start: int, stop: int, options: Options) -> PartScan:
    """Scan the lines in [start, stop), a block at a time (less memory, and ~10 % faster than at once)."""
    part, carry, pos = PartScan(), b"", start
    while pos < stop:
        block = os.pread(fd, min(_READ_BLOCK, stop - pos), pos)
        if not block:
            break
        pos += len(block)
        lines = (carry + block).split(b"\n")
        carry = lines.pop()
        scan_lines(lines, options, part)
    return scan_lines([carry], options, part) if carry else part


def _start_helper(fd: int, start: int, stop: int, options: Options) -> subprocess.Popen | None:
    job = {"fd": fd, "start": start, "stop": stop, **options.to_json()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")]))}
    try:
        helper = subprocess.Popen([sys.executable, "-m", "orchestra.core.ledger.scan"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, pass_fds=(fd,))
        assert helper.stdin is not None
        helper.stdin.write(json.dumps(job).encode())
        helper.stdin.close()
    except (OSError, ValueError, TypeError):
        return None
    return helper


def _finish_helper(helper: subprocess.Popen | None) -> PartScan | None:
    """The helper's findings; None when it failed (the caller then scans that part itself)."""
    if helper is None:
        return None
    assert helper.stdout is not None
    with helper.stdout:
        out = helper.stdout.read()
    if helper.wait() != 0:
        return None
    try:
        return PartScan(**json.loads(out))
    except (ValueError, TypeError):
        return None


def main() -> None:
    """The helper: scan the part a job on stdin names and print the findings as JSON."""
    job = json.loads(sys.stdin.buffer.read())
    part = _scan_range(job["fd"], job["start"], job["stop"], Options.from_json(job))
    sys.stdout.write(json.dumps(asdict(part)))


if __name__ == "__main__":
    main()
