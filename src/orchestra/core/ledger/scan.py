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
from pathlib import Path

from orchestra.core.ledger.lines import GENESIS, hash_matches, parse_line, split_lines
from orchestra.core.ledger.signers import AllowedKey, SignatureChecker

PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this, one process scans faster than two start
MAX_PARTS = 4
_BLOCK = 64 * 1024
_SRC = str(Path(__file__).resolve().parents[3])

TEMPLATES = {
    "garbled": "line {n}: not a valid JSON entry (garbled or truncated)",
    "altered": "line {n}: hash does not match its content (entry was altered)",
    "genesis": "line 1: prev is not the genesis hash (the first entry was removed or replaced)",
    "prev": "line {n}: prev does not match line {p}'s hash (an entry was removed, inserted or reordered)",
    "seq": "line {n}: seq is {detail}, expected {p} (entries were removed, inserted or reordered)",
    "sig": "line {n}: {detail}",
}
_ORDER = {"garbled": 0, "altered": 1, "genesis": 2, "prev": 2, "seq": 3, "sig": 4}


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


def scan_lines(lines: list[bytes], checker: SignatureChecker | None) -> PartScan:
    """Check each line on its own and against the line before it (the first line's link is left to stitch)."""
    part = PartScan(count=len(lines))
    prev_hash: str | None = None
    for index, raw in enumerate(lines):
        try:
            entry = parse_line(raw)
        except ValueError:
            part.problems.append([index, "garbled", ""])
            part.seqs.append(None)
            prev_hash = None
            continue
        if not hash_matches(raw, entry):
            part.problems.append([index, "altered", ""])
        if index == 0:
            part.first_parsed, part.first_prev = True, entry.get("prev")
        elif prev_hash is not None and entry.get("prev") != prev_hash:
            part.problems.append([index, "prev", ""])
        part.seqs.append(entry.get("seq"))
        stored = entry.get("hash")
        prev_hash = stored if isinstance(stored, str) else None
        _note_extras(part, index, entry, checker)
    part.last_hash = prev_hash
    return part


def _note_extras(part: PartScan, index: int, entry: dict, checker: SignatureChecker | None) -> None:
    """Record the entry's signature state, its accept fields and the anchored marker."""
    if entry.get("action") == "accept":
        part.accepts.append([index, entry.get("merge_commit"), entry.get("decision"), entry.get("run")])
    if entry.get("anchored") is True and part.anchored_first is None:
        part.anchored_first = index
    sig, signer = entry.get("sig"), entry.get("signer")
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
        stored = entry.get("hash")
        detail = checker.problem(stored if isinstance(stored, str) else "", signer, sig, entry.get("time"))
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
        garbled = {index for index, kind, _ in part.problems if kind == "garbled"}
        keyed += [(base + index, _ORDER[kind], _text(kind, base + index, detail)) for index, kind, detail in part.problems]
        keyed += [(base + index, _ORDER["seq"], _text("seq", base + index, repr(seq)))
                  for index, seq in enumerate(part.seqs) if index not in garbled and seq != base + index]
        _add_counts(scan, part, base)
        if part.count:
            last = part.last_hash
        base += part.count
    keyed.sort(key=lambda item: item[:2])
    scan.count, scan.problems, scan.last_hash = base, [text for _, _, text in keyed], last if base else None
    return scan


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


def scan_file(fd: int, end: int, path: Path, checker: SignatureChecker | None) -> list[PartScan]:
    """Scan the complete lines in [0, end) of the open ledger file (end is just after a newline)."""
    bounds = _bounds(fd, end)
    helpers = [_start_helper(path, start, stop, checker) for start, stop in bounds[1:]]
    parts = [_scan_range(fd, *bounds[0], checker)]
    for (start, stop), helper in zip(bounds[1:], helpers):
        parts.append(_finish_helper(helper) or _scan_range(fd, start, stop, checker))
    return parts


def _bounds(fd: int, end: int) -> list[tuple[int, int]]:
    """Byte ranges of whole lines, one per part."""
    wanted = 1 if end < PARALLEL_MIN_BYTES else min(os.cpu_count() or 1, MAX_PARTS, end // PARALLEL_MIN_BYTES)
    cuts = [0]
    for k in range(1, wanted):
        cut = _next_line_start(fd, end * k // wanted, end)
        if cut > cuts[-1] and cut < end:
            cuts.append(cut)
    return list(zip(cuts, [*cuts[1:], end]))


def _next_line_start(fd: int, pos: int, end: int) -> int:
    while pos < end:
        block = os.pread(fd, min(_BLOCK, end - pos), pos)
        newline = block.find(b"\n")
        if newline >= 0:
            return pos + newline + 1
        pos += len(block)
    return end


def _scan_range(fd: int, start: int, stop: int, checker: SignatureChecker | None) -> PartScan:
    lines, _ = split_lines(os.pread(fd, stop - start, start))
    return scan_lines(lines, checker)


def _start_helper(path: Path, start: int, stop: int, checker: SignatureChecker | None) -> subprocess.Popen | None:
    job = {"path": str(path), "start": start, "stop": stop,
           "allowed": None if checker is None else [key.to_json() for key in checker.allowed],
           "source": None if checker is None else checker.source}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")]))}
    try:
        helper = subprocess.Popen([sys.executable, "-m", "orchestra.core.ledger.scan"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert helper.stdin is not None
        helper.stdin.write(json.dumps(job).encode())
        helper.stdin.close()
    except OSError:
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
    checker = None
    if job["allowed"] is not None:
        checker = SignatureChecker([AllowedKey.from_json(item) for item in job["allowed"]], job["source"])
    fd = os.open(job["path"], os.O_RDONLY)
    try:
        part = _scan_range(fd, job["start"], job["stop"], checker)
    finally:
        os.close(fd)
    sys.stdout.write(json.dumps(asdict(part)))


if __name__ == "__main__":
    main()
