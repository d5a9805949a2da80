"""The anchor in git and the cross-check with merge commits catch what the chain and head cannot:
a tamperer who recomputes both (and, for the cross-check, the anchor too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.ledger import Ledger, LedgerError
from orchestra.core.ledger.anchor import ANCHOR_REF
from tests.conftest import git
from tests.core.test_ledger_kit import (
    accept_fields,
    assert_fails,
    decision_id,
    fleet_like_ledger,
    ledger_of,
    merge_commit,
    reject_fields,
    rewrite,
)


def test_a_clean_ledger_verifies_anchored(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    result = ledger.verify()
    assert result.ok, result.problems
    assert (result.count, result.anchor, result.notes) == (5, ANCHOR_REF, ())
    assert ledger.entries()[-1]["anchored"] is True


def test_the_anchor_is_a_chain_of_commits_with_trailers(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    last = ledger.entries()[-1]["hash"]
    assert git(repo, "log", "-1", "--format=%(trailers:key=Ledger-Count,valueonly)", ANCHOR_REF) == "5"
    assert git(repo, "log", "-1", "--format=%(trailers:key=Ledger-Hash,valueonly)", ANCHOR_REF) == last
    assert git(repo, "rev-list", "--count", ANCHOR_REF) == "5"
    assert git(repo, "log", "-1", "--format=%T", ANCHOR_REF) == git(repo, "hash-object", "-t", "tree", "/dev/null")


# --- chain and head recomputed: the anchor disagrees ----------------------------------------------


def test_inserted_entry_with_chain_and_head_recomputed(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    entries = ledger.entries()
    rewrite(ledger, [*entries[:2], reject_fields("r99", decision=decision_id(99)), *entries[2:]])
    assert_fails(ledger.verify(), "ledger has 6 entries but its anchor in git", "records 5")
    with pytest.raises(LedgerError, match="anchor"):
        ledger.check_appendable()


def test_deleted_entry_with_chain_and_head_recomputed(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    entries = ledger.entries()
    rewrite(ledger, [*entries[:2], *entries[3:]])
    assert_fails(ledger.verify(), "ledger has 4 entries but its anchor", "entries were removed")


def test_reject_turned_accept_with_chain_and_head_recomputed(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    entries = ledger.entries()
    entries[2] = {**entries[2], "action": "accept", "merge_commit": git(repo, "rev-parse", "main")}
    rewrite(ledger, entries)
    result = ledger.verify()
    assert_fails(result, "line 5: hash does not match the anchor in git")
    assert_fails(result, "line 3: merge commit", "does not carry the trailer Orchestra-Decision: " + decision_id(3))


def test_ledger_and_head_deleted_while_the_anchor_exists(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    ledger.path.unlink()
    ledger.head_path.unlink()
    assert_fails(ledger.verify(), "the ledger file and its head file are missing", "records 5 entries",
                 "the ledger was deleted")
    with pytest.raises(LedgerError, match="anchor in git"):
        ledger.append(reject_fields("r6"))
    assert not ledger.path.exists() or ledger.path.read_text() == ""


def test_the_anchor_ref_deleted_under_anchored_entries(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    git(repo, "update-ref", "-d", ANCHOR_REF)
    assert_fails(ledger.verify(), "entries from line 1 on were anchored in git", "that ref is gone")
    with pytest.raises(LedgerError, match="that ref is gone"):
        ledger.check_appendable()


# --- everything recomputed, the anchor too: git's merge commits disagree ---------------------------


def test_accept_deleted_with_everything_recomputed(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    entries = ledger.entries()
    merge = entries[1]["merge_commit"]
    rewrite(ledger, [entries[0], *entries[2:]], anchor=True)
    assert_fails(ledger.verify(), f"merge commit {merge} names decision {decision_id(2)}",
                 "the ledger has no accept entry for it")


def test_accept_turned_reject_with_everything_recomputed(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    entries = ledger.entries()
    entries[3] = reject_fields("r4", decision=decision_id(4), time=entries[3]["time"], anchored=True)
    rewrite(ledger, entries, anchor=True)
    assert_fails(ledger.verify(), "names decision " + decision_id(4), "no accept entry for it")


def test_invented_accept_with_everything_recomputed(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    entries = ledger.entries()
    plain = git(repo, "rev-list", "--max-parents=0", "main")  # the first commit: no trailers
    invented = accept_fields("r9", plain, decision_id(9), time=entries[0]["time"], anchored=True)
    rewrite(ledger, [*entries, invented, accept_fields("r8", "f" * 40, decision_id(8))], anchor=True)
    result = ledger.verify()
    assert_fails(result, "line 6: merge commit", "does not carry the trailer Orchestra-Decision: " + decision_id(9))
    assert_fails(result, f"line 7: merge commit {'f' * 40} does not exist in the repository")


def test_everything_deleted_but_the_merge_commits(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    merges = [entry["merge_commit"] for entry in ledger.entries() if entry["action"] == "accept"]
    git(repo, "update-ref", "-d", ANCHOR_REF)
    ledger.path.unlink()
    ledger.head_path.unlink()
    result = ledger.verify()
    for n, merge in zip((2, 4), merges):
        assert_fails(result, f"merge commit {merge} names decision {decision_id(n)}", "no accept entry for it")


def test_merge_commits_of_older_orchestra_need_an_accept_too(repo: Path) -> None:
    legacy = merge_commit(repo, "r1")  # Orchestra-Run and Accepted-By, no decision id
    ledger = ledger_of(repo)
    ledger.append(reject_fields("r2"))
    assert_fails(ledger.verify(), f"merge commit {legacy} names run r1", "Accepted-By", "no accept entry for it")
    ledger.append(accept_fields("r1", legacy))  # an old-style accept: no decision field
    assert ledger.verify().ok
    git(repo, "update-ref", "refs/heads/main", git(repo, "rev-parse", "main~1"))  # history rewound
    assert ledger.verify().ok, "an unreachable merge commit still exists and still names the run"


def test_an_old_style_accept_must_name_the_run_its_commit_names(repo: Path) -> None:
    legacy = merge_commit(repo, "r1")
    ledger = ledger_of(repo)
    ledger.append(accept_fields("r7", legacy))
    assert_fails(ledger.verify(), f"line 1: merge commit {legacy} does not carry the trailer Orchestra-Run: r7")


def test_the_same_merge_commit_recorded_twice(repo: Path) -> None:
    ledger = fleet_like_ledger(repo)
    again = ledger.entries()[1]
    ledger.append(accept_fields("r2", again["merge_commit"], again["decision"] + "0"))
    assert_fails(ledger.verify(), "line 6: merge commit", "is already recorded by line 2")


# --- ledgers from before the anchor ----------------------------------------------------------------


def test_a_ledger_from_before_the_anchor_is_a_note_then_anchored(repo: Path) -> None:
    old = Ledger(ledger_of(repo).path)  # written by an orchestra without the anchor
    merge = merge_commit(repo, "r1", decision_id(1))
    old.append(accept_fields("r1", merge, decision_id(1)))
    old.append(reject_fields("r2"))
    ledger = ledger_of(repo)
    result = ledger.verify()
    assert result.ok and result.anchor is None
    assert any("not anchored in git yet" in note for note in result.notes)
    ledger.append(reject_fields("r3"))
    result = ledger.verify()
    assert result.ok and result.anchor == ANCHOR_REF and result.notes == ()


def test_a_ledger_from_before_the_anchor_still_needs_the_git_cross_check(repo: Path) -> None:
    old = Ledger(ledger_of(repo).path)
    old.append(accept_fields("r1", merge_commit(repo, "r1", decision_id(1)), decision_id(2)))
    assert_fails(ledger_of(repo).verify(), "does not carry the trailer Orchestra-Decision: " + decision_id(2))


def test_a_merge_with_a_decision_trailer_on_any_branch_needs_its_accept_entry(repo: Path) -> None:
    """Not just the target: an accepted merge found on any branch's first-parent history is checked."""
    ledger = fleet_like_ledger(repo)
    git(repo, "checkout", "-q", "-b", "elsewhere")
    side = git(repo, "commit-tree", git(repo, "rev-parse", "HEAD^{tree}"), "-p", "HEAD", "-m", "side")
    git(repo, "merge", "-q", "--no-ff", "-m", f"sneaky\n\nOrchestra-Decision: {decision_id(42)}", side)
    assert_fails(ledger.verify(), f"names decision {decision_id(42)}", "no accept entry")


def test_a_trailer_an_agent_writes_on_its_run_branch_is_not_an_accept(repo: Path) -> None:
    """Run branches are the agents' to write: a made-up trailer there cannot make verify fail."""
    ledger = fleet_like_ledger(repo)
    git(repo, "checkout", "-q", "-b", "orchestra/fix/r9-agent")
    side = git(repo, "commit-tree", git(repo, "rev-parse", "HEAD^{tree}"), "-p", "HEAD", "-m", "side")
    git(repo, "merge", "-q", "--no-ff", "-m", f"fake\n\nOrchestra-Decision: {decision_id(43)}", side)
    git(repo, "commit", "-q", "--allow-empty", "-m", f"fake too\n\nOrchestra-Decision: {decision_id(44)}")
    assert ledger.verify().ok, ledger.verify().problems
