"""Tests for the hash-chained sign-off ledger: chaining, tamper detection, crash safety, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import orchestra
from orchestra.core.ledger.chain import GENESIS, Ledger, LedgerError, canonical_json, entry_hash
from orchestra.core.ledger.verify import Verification


def decision(n: int, **extra: object) -> dict:
    """A representative accept decision for run number n."""
    return {"action": "accept", "run": f"run-{n}", "agent": "claude", "actor": "tester", **extra}


def filled(tmp_path: Path, count: int = 5) -> Ledger:
    """A ledger under a not-yet-existing directory holding `count` decisions."""
    ledger = Ledger(tmp_path / "state" / "ledger.jsonl")
    for n in range(count):
        ledger.append(decision(n))
    return ledger


def lines_of(ledger: Ledger) -> list[bytes]:
    """The ledger file's lines, newlines kept."""
    return ledger.path.read_bytes().splitlines(keepends=True)


def rewrite(ledger: Ledger, lines: list[bytes]) -> None:
    """Replace the ledger file's content with the given lines (as a tamperer would)."""
    ledger.path.write_bytes(b"".join(lines))


def forged(fields: dict, seq: int, prev: str) -> bytes:
    """A self-consistent entry line, as someone who knows the format could fabricate."""
    entry = {**fields, "time": "2024-01-01T00:00:00Z", "seq": seq, "prev": prev}
    entry["hash"] = entry_hash(entry)
    return (canonical_json(entry) + "\n").encode()


def assert_problem(result: Verification, *fragments: str) -> None:
    """Fail unless verification failed with some problem containing every fragment."""
    assert not result.ok
    assert any(all(f in p for f in fragments) for p in result.problems), result.problems


# --- round trip and chain fields -------------------------------------------------------------


def test_append_then_entries_round_trip(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "deep" / "dir" / "ledger.jsonl")
    written = [
        ledger.append(decision(0, gates={"tests": "pass", "lint": None}, spec_hash="ab" * 32)),
        ledger.append({"action": "redirect", "run": "run-1", "instruction": "use pathlib"}),
        ledger.append({"action": "reject", "run": "run-2", "reason": "naïve – ünïcode ✓"}),
    ]
    assert ledger.path.is_file()
    assert ledger.entries() == written
    assert ledger.last() == written[-1]
    assert written[0]["gates"] == {"tests": "pass", "lint": None}
    assert written[2]["reason"] == "naïve – ünïcode ✓"


def test_chain_fields(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 3)
    entries = ledger.entries()
    assert [e["seq"] for e in entries] == [0, 1, 2]
    assert entries[0]["prev"] == GENESIS
    assert entries[1]["prev"] == entries[0]["hash"]
    assert entries[2]["prev"] == entries[1]["hash"]
    for entry in entries:
        body = {k: v for k, v in entry.items() if k != "hash"}
        assert entry["hash"] == entry_hash(body)
        assert entry["time"].endswith("Z")
        time.strptime(entry["time"], "%Y-%m-%dT%H:%M:%SZ")


def test_lines_are_canonical_json(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 2)
    raw = ledger.path.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    for line, entry in zip(raw.splitlines(), ledger.entries()):
        assert line == canonical_json(entry)


def test_head_file_tracks_count_and_last_hash(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 4)
    head = json.loads(ledger.head_path.read_text())
    assert head == {"count": 4, "hash": ledger.last()["hash"]}
    assert ledger.head_path.name == "ledger.jsonl.head"
    assert ledger.lock_path.name == "ledger.jsonl.lock"


def test_given_time_is_kept_and_fields_are_not_mutated(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    fields = decision(0, time="2030-05-06T07:08:09Z")
    entry = ledger.append(fields)
    assert entry["time"] == "2030-05-06T07:08:09Z"
    assert "hash" not in fields and "seq" not in fields


@pytest.mark.parametrize("key", ["seq", "prev", "hash", "sig", "signer", "anchored"])
def test_chain_fields_cannot_be_supplied(tmp_path: Path, key: str) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with pytest.raises(ValueError, match=key):
        ledger.append(decision(0, **{key: "x"}))
    assert not ledger.path.exists()


def test_unserialisable_fields_write_nothing(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 1)
    before = ledger.path.read_bytes()
    with pytest.raises(TypeError):
        ledger.append(decision(1, blob=object()))
    assert ledger.path.read_bytes() == before
    assert ledger.verify().ok


def test_unicode_line_separators_inside_strings(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(decision(0, reason="a\u2028b\u2029c\x85d\x1ce\rf"))
    ledger.append(decision(1))
    assert len(ledger.entries()) == 2
    assert ledger.entries()[0]["reason"] == "a\u2028b\u2029c\x85d\x1ce\rf"
    assert ledger.verify().ok


def test_long_last_line_spanning_several_tail_blocks(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(decision(0))
    big = ledger.append(decision(1, reason="x" * 300_000))
    after = ledger.append(decision(2))
    assert after["prev"] == big["hash"] and after["seq"] == 2
    assert ledger.verify() == Verification(ok=True, count=3, problems=())


# --- verification ----------------------------------------------------------------------------


def test_clean_ledger_verifies(tmp_path: Path) -> None:
    assert filled(tmp_path, 5).verify() == Verification(ok=True, count=5, problems=())


def test_missing_ledger_verifies_empty(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "nowhere" / "ledger.jsonl")
    assert ledger.verify() == Verification(ok=True, count=0, problems=())
    assert ledger.entries() == []
    assert ledger.last() is None
    ledger.check_appendable()
    assert ledger.recover() is None
    assert not (tmp_path / "nowhere").exists()


def test_empty_ledger_file_verifies_empty(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.path.touch()
    assert ledger.verify() == Verification(ok=True, count=0, problems=())
    assert ledger.last() is None
    assert ledger.append(decision(0))["prev"] == GENESIS


def test_altered_field_detected(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    lines = lines_of(ledger)
    lines[2] = lines[2].replace(b'"accept"', b'"reject"')
    rewrite(ledger, lines)
    result = ledger.verify()
    assert result.problems == ("line 3: hash does not match its content (entry was altered)",)


def test_removed_middle_entry_detected(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    lines = lines_of(ledger)
    del lines[2]
    rewrite(ledger, lines)
    result = ledger.verify()
    assert_problem(result, "line 3: prev does not match line 2's hash", "removed, inserted or reordered")
    assert_problem(result, "line 3: seq is 3, expected 2")
    assert_problem(result, "ledger has 4 entries but its head records 5")


def test_removed_first_entry_detected(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    rewrite(ledger, lines_of(ledger)[1:])
    assert_problem(ledger.verify(), "line 1: prev is not the genesis hash")


def test_removed_last_entry_detected_by_head(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 6)
    rewrite(ledger, lines_of(ledger)[:-1])
    result = ledger.verify()
    assert result.problems == (
        "ledger has 5 entries but its head records 6 (entries were removed from the end)",
    )


def test_all_entries_removed_detected_by_head(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 3)
    ledger.path.unlink()
    assert_problem(ledger.verify(), "ledger has 0 entries but its head records 3")


def test_inserted_entry_detected(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    lines = lines_of(ledger)
    second = json.loads(lines[1])
    lines.insert(2, forged(decision(99), seq=2, prev=second["hash"]))
    rewrite(ledger, lines)
    result = ledger.verify()
    assert_problem(result, "line 4: prev does not match line 3's hash")
    assert_problem(result, "line 4: seq is 2, expected 3")


def test_reordered_entries_detected(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    lines = lines_of(ledger)
    lines[1], lines[2] = lines[2], lines[1]
    rewrite(ledger, lines)
    result = ledger.verify()
    assert_problem(result, "line 2: prev does not match line 1's hash")
    assert_problem(result, "line 3: prev does not match line 2's hash")
    assert result.count == 5


def test_garbled_line_detected(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    lines = lines_of(ledger)
    lines[1] = lines[1][:20] + b"\n"
    rewrite(ledger, lines)
    assert_problem(ledger.verify(), "line 2: not a valid JSON entry")
    with pytest.raises(LedgerError, match="line 2"):
        ledger.entries()


def test_truncated_last_line_detected(tmp_path: Path) -> None:
    ledger = filled(tmp_path)
    data = ledger.path.read_bytes()
    ledger.path.write_bytes(data[:-30])
    assert_problem(ledger.verify(), "line 5: incomplete line")


def test_mismatching_head_detected(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 3)
    ledger.head_path.write_text(json.dumps({"count": 3, "hash": "f" * 64}))
    assert_problem(ledger.verify(), "line 3: hash does not match the head")
    ledger.head_path.write_text(json.dumps({"count": 2, "hash": ledger.last()["prev"]}))
    assert_problem(ledger.verify(), "ledger has 3 entries but its head records 2")
    ledger.head_path.write_text("{not json")
    assert_problem(ledger.verify(), "head file", "unreadable")


def test_replaced_last_entry_detected_by_head(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 3)
    lines = lines_of(ledger)
    lines[-1] = forged(decision(7), seq=2, prev=json.loads(lines[1])["hash"])
    rewrite(ledger, lines)
    assert_problem(ledger.verify(), "line 3: hash does not match the head")


# --- crash safety ----------------------------------------------------------------------------


def test_append_refuses_partial_last_line(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 2)
    with ledger.path.open("ab") as handle:
        handle.write(b'{"action":"acc')
    before = ledger.path.read_bytes()
    with pytest.raises(LedgerError, match="partial line"):
        ledger.append(decision(2))
    assert ledger.path.read_bytes() == before


def test_append_refuses_garbage_last_line(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 2)
    with ledger.path.open("ab") as handle:
        handle.write(b"garbage\n")
    with pytest.raises(LedgerError, match="last line"):
        ledger.append(decision(2))


def test_a_head_lagging_by_one_without_a_pending_line_is_refused(tmp_path: Path) -> None:
    """A crash between line and head leaves the pending line too; without it, the lag is a forged append."""
    ledger = filled(tmp_path, 3)
    entries = ledger.entries()
    ledger.head_path.write_text(json.dumps({"count": 2, "hash": entries[1]["hash"]}))
    with pytest.raises(LedgerError, match="head records 2"):
        ledger.append(decision(3))
    assert_problem(ledger.verify(), "ledger has 3 entries but its head records 2")
    ledger.pending_path.write_bytes(lines_of(ledger)[-1])  # what the interrupted append staged
    assert ledger.verify().ok
    entry = ledger.append(decision(3))
    assert entry["seq"] == 3 and entry["prev"] == entries[2]["hash"]
    assert ledger.verify() == Verification(ok=True, count=4, problems=())


def test_append_refuses_to_hide_removed_tail(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 5)
    rewrite(ledger, lines_of(ledger)[:-2])
    with pytest.raises(LedgerError, match="head records 5"):
        ledger.append(decision(5))
    assert ledger.verify().count == 3


# --- concurrency -----------------------------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from orchestra.core.ledger.chain import Ledger
path, go, writer = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
ledger = Ledger(path)
while not go.exists():
    time.sleep(0.002)
for i in range(int(sys.argv[4])):
    ledger.append({"action": "accept", "run": f"w{writer}-{i}", "writer": writer, "i": i})
"""


def test_concurrent_appends_from_separate_processes(tmp_path: Path) -> None:
    writers, per_writer = 4, 100
    path, go = tmp_path / "shared" / "ledger.jsonl", tmp_path / "go"
    src = str(Path(orchestra.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(go), str(w), str(per_writer)], env=env)
        for w in range(writers)
    ]
    time.sleep(0.3)  # let every interpreter start, so the writers really race
    go.touch()
    assert [p.wait(timeout=60) for p in procs] == [0] * writers

    ledger = Ledger(path)
    result = ledger.verify()
    assert result == Verification(ok=True, count=writers * per_writer, problems=())
    entries = ledger.entries()
    assert [e["seq"] for e in entries] == list(range(writers * per_writer))
    for w in range(writers):
        assert [e["i"] for e in entries if e["writer"] == w] == list(range(per_writer))


# --- bad input -------------------------------------------------------------------------------


def _every_method(ledger: Ledger) -> list:
    return [ledger.entries, ledger.last, ledger.verify, ledger.check_appendable, ledger.recover,
            ledger.check_path, lambda: ledger.append(decision(0))]


def test_a_ledger_path_that_is_a_directory(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.path.mkdir()
    for method in _every_method(ledger):
        with pytest.raises(LedgerError, match="is a directory, not a file"):
            method()


def test_a_ledger_directory_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory")
    ledger = Ledger(tmp_path / "state" / "ledger.jsonl")
    for method in _every_method(ledger):
        with pytest.raises(LedgerError, match="a part of it is a file"):
            method()


def test_an_unreadable_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The system refuses to open the ledger (chmod 0 does not stop root, so the refusal is made here)."""
    ledger = filled(tmp_path, 2)
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if Path(path) == ledger.path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    for method in _every_method(ledger):
        with pytest.raises(LedgerError, match="permission denied"):
            method()


def test_a_head_file_that_is_a_directory(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 2)
    ledger.head_path.unlink()
    ledger.head_path.mkdir()
    assert_problem(ledger.verify(), "head file ledger.jsonl.head is a directory")
    with pytest.raises(LedgerError, match="is a directory"):
        ledger.append(decision(2))


def test_a_lock_file_that_is_a_directory_is_named(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 1)
    ledger.lock_path.unlink()
    ledger.lock_path.mkdir()
    with pytest.raises(LedgerError, match=r"ledger\.jsonl\.lock is a directory"):
        ledger.append(decision(1))
