"""A SIGKILL at any step of an append: the next append or recover() completes it, exactly once, and
verify never calls the interrupted state tampering. Each step is reached by a named fault point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.core.base.faults import POINTS
from orchestra.core.ledger import LedgerError
from orchestra.core.ledger.anchor import ANCHOR_REF
from orchestra.core.ledger.chain import AFTER_ANCHOR, AFTER_HEAD, AFTER_LINE, AFTER_PENDING
from tests.conftest import git
from tests.core.test_ledger_kit import (
    append_in_process,
    assert_fails,
    decision_id,
    ledger_of,
    reject_fields,
    signing_setup,
)

# What each point leaves: (lines in the file, the head's count, the anchor's count) after 2 clean appends.
LEFT_BEHIND = {
    AFTER_PENDING: (2, 2, 2),
    AFTER_LINE: (3, 2, 2),
    AFTER_HEAD: (3, 3, 2),
    AFTER_ANCHOR: (3, 3, 3),
}


def test_every_ledger_fault_point_is_tested() -> None:
    assert {point for point in POINTS if point.startswith("ledger.")} == set(LEFT_BEHIND)


def state(root: Path) -> tuple[int, int, int]:
    ledger = ledger_of(root)
    head = json.loads(ledger.head_path.read_text())["count"]
    anchored = int(git(root, "log", "-1", "--format=%(trailers:key=Ledger-Count,valueonly)", ANCHOR_REF))
    return len(ledger.path.read_bytes().splitlines()), head, anchored


def crashed(root: Path, point: str) -> None:
    """Two clean appends, then a third killed at point."""
    for n in range(2):
        append_in_process(root, f"r{n}", decision_id(n))
    assert append_in_process(root, "r2", decision_id(2), fault=point) == -9


@pytest.mark.parametrize("point", sorted(LEFT_BEHIND))
@pytest.mark.parametrize("convergence", ["recover", "next append"])
def test_a_kill_at_each_step_converges(repo: Path, point: str, convergence: str) -> None:
    crashed(repo, point)
    ledger = ledger_of(repo)
    assert state(repo) == LEFT_BEHIND[point]
    assert ledger.pending_path.exists()
    interrupted = ledger.verify()
    assert interrupted.ok, interrupted.problems  # no false "tampered"
    assert any("an append was interrupted (entry 2)" in note for note in interrupted.notes)

    if convergence == "recover":
        assert "entry 2" in ledger.recover()
        assert ledger.recover() is None
    else:
        append_in_process(repo, "r3", decision_id(3))
    runs = [entry["run"] for entry in ledger.entries()]
    assert runs == ["r0", "r1", "r2"] + (["r3"] if convergence == "next append" else [])
    assert state(repo) == (len(runs),) * 3 and not ledger.pending_path.exists()
    result = ledger.verify()
    assert result.ok and result.notes == () and result.anchor == ANCHOR_REF, result


@pytest.mark.parametrize("point", sorted(LEFT_BEHIND))
def test_a_retried_decision_is_not_written_twice(repo: Path, point: str) -> None:
    """The caller retries the append it saw die: the recovered entry is returned, not a second one."""
    crashed(repo, point)
    ledger = ledger_of(repo)
    entry = ledger.append(reject_fields("r2", decision=decision_id(2)))
    assert entry["seq"] == 2 and [e["run"] for e in ledger.entries()] == ["r0", "r1", "r2"]
    assert ledger.verify().ok


def test_a_kill_while_recovering_converges_too(repo: Path) -> None:
    crashed(repo, AFTER_PENDING)
    assert append_in_process(repo, "r3", decision_id(3), fault=AFTER_HEAD) == -9  # dies completing r2
    ledger = ledger_of(repo)
    assert ledger.verify().ok
    assert "entry 2" in ledger.recover()
    assert [e["run"] for e in ledger.entries()] == ["r0", "r1", "r2"] and ledger.verify().notes == ()


def test_a_signed_append_killed_is_completed_with_its_signature(repo: Path, tmp_path: Path) -> None:
    signing_setup(repo, tmp_path / "keys")
    crashed(repo, AFTER_PENDING)
    ledger = ledger_of(repo)
    ledger.recover()
    result = ledger.verify(require_signed=True)
    assert result.ok and result.signed == 3


def test_a_torn_line_of_the_pending_append_is_completed(repo: Path) -> None:
    crashed(repo, AFTER_PENDING)
    ledger = ledger_of(repo)
    line = ledger.pending_path.read_bytes()
    with ledger.path.open("ab") as handle:
        handle.write(line[: len(line) // 2])  # a write cut short
    assert ledger.verify().ok
    ledger.recover()
    assert [e["run"] for e in ledger.entries()] == ["r0", "r1", "r2"] and ledger.verify().notes == ()


def test_an_unreadable_pending_line_is_discarded(repo: Path) -> None:
    crashed(repo, AFTER_PENDING)
    ledger = ledger_of(repo)
    ledger.pending_path.write_bytes(b'{"action":"rej')
    assert ledger.verify().ok
    assert "discarded" in ledger.recover()
    assert len(ledger.entries()) == 2 and ledger.verify().notes == ()


def test_a_lag_without_a_pending_line_is_a_forged_append(repo: Path) -> None:
    """What a crash after the line looks like, minus the pending line: someone appended by hand."""
    crashed(repo, AFTER_LINE)
    ledger = ledger_of(repo)
    ledger.pending_path.unlink()
    assert_fails(ledger.verify(), "ledger has 3 entries but its head records 2")
    assert_fails(ledger.verify(), "ledger has 3 entries but its anchor in git", "records 2")
    with pytest.raises(LedgerError, match="head records 2"):
        ledger.append(reject_fields("r3"))


def test_a_pending_line_that_no_longer_fits_is_not_applied(repo: Path) -> None:
    crashed(repo, AFTER_PENDING)
    ledger = ledger_of(repo)
    lines = ledger.path.read_bytes().splitlines(keepends=True)
    ledger.path.write_bytes(lines[0])  # the ledger changed after the crash
    assert_fails(ledger.verify(), "a pending line (entry 2", "does not fit the ledger's end")
    with pytest.raises(LedgerError, match="no longer ends where it was written"):
        ledger.recover()
    with pytest.raises(LedgerError, match="no longer ends where it was written"):
        ledger.check_appendable()
