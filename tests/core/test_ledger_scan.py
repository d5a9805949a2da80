"""verify's fast paths say exactly what the plain way says: hashing stored bytes, and scanning in parts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from orchestra.core.base.canonical import canonical_json
from orchestra.core.ledger import Ledger
from orchestra.core.ledger import scan
from orchestra.core.ledger.lines import entry_hash, hash_matches, hashed_body, parse_line


def entry(n: int, **extra: object) -> dict:
    return {"action": "reject", "run": f"r{n}", "gates": [{"name": "tests", "hash": "h" * 64}],
            "task": 'say "hash":"x", or \u2028 not', **extra}


def ledger_with_problems(tmp_path: Path, count: int = 400) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for n in range(count):
        ledger.append(entry(n))
    lines = ledger.path.read_bytes().splitlines(keepends=True)
    lines[7] = lines[7].replace(b'"reject"', b'"accept"')          # altered
    del lines[count // 3]                                             # removed
    lines[min(250, count // 2)] = b"garbage\n"                       # garbled
    lines[-3], lines[-2] = lines[-2], lines[-3]                     # reordered
    ledger.path.write_bytes(b"".join(lines))
    return ledger


def test_parts_in_parallel_find_what_one_pass_finds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = ledger_with_problems(tmp_path)
    whole = ledger.verify()
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 4096)
    monkeypatch.setattr(scan, "_cores", lambda: 4)
    finished, finish = [], scan._finish_helper
    monkeypatch.setattr(scan, "_finish_helper", lambda helper: finished.append(finish(helper)) or finished[-1])
    parted = ledger.verify()
    assert parted == whole and not whole.ok
    assert len(whole.problems) >= 8
    assert len(finished) == 3 and all(part is not None and part.count for part in finished)


def test_a_helper_that_cannot_start_is_replaced_by_this_process(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = ledger_with_problems(tmp_path)
    whole = ledger.verify()
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 4096)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert ledger.verify() == whole


def test_the_stored_bytes_hash_like_the_canonical_form(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    written = ledger.append(entry(0, sig_like={"sig": "x", "hash": "y"}))
    raw = ledger.path.read_bytes().rstrip(b"\n")
    assert hash_matches(raw, parse_line(raw))
    assert written["hash"] == entry_hash(hashed_body(written))


def test_a_nested_copy_of_the_hash_member_cannot_pass_for_it() -> None:
    """Cutting the first `"hash":"H"` finds a nested copy placed before the real one: the line fails."""
    honest_body = {"a_nested": {}, "seq": 0}
    stored = entry_hash(honest_body)
    honest = canonical_json({**honest_body, "hash": stored}).encode()
    assert hash_matches(honest, parse_line(honest))
    forged = canonical_json({"a_nested": {"hash": stored}, "hash": stored, "seq": 0}).encode()
    assert forged.index(b'"hash"') < forged.index(b',"hash"')  # the nested copy comes first
    assert not hash_matches(forged, parse_line(forged))


def test_a_line_not_in_canonical_form_still_verifies(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for n in range(3):
        ledger.append(entry(n))
    pretty = [json.dumps(json.loads(line)) for line in ledger.path.read_text().split("\n")[:-1]]
    ledger.path.write_text("\n".join(pretty) + "\n")
    assert ledger.verify().ok


def test_trailing_bytes_after_an_entry_are_not_ignored(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(entry(0))
    ledger.path.write_bytes(ledger.path.read_bytes().rstrip(b"\n") + b' {"x":1}\n')
    assert not ledger.verify().ok


def test_a_lone_surrogate_is_an_altered_line_not_a_crash(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(entry(0))
    ledger.path.write_bytes(ledger.path.read_bytes().replace(b'"r0"', b'"\\ud800"'))
    result = ledger.verify()
    assert result.problems == ("line 1: hash does not match its content (entry was altered)",)


def test_lines_across_read_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = ledger_with_problems(tmp_path, 60)
    whole = ledger.verify()
    monkeypatch.setattr(scan, "_READ_BLOCK", 97)  # every line spans blocks
    assert ledger.verify() == whole and len(whole.problems) >= 3
