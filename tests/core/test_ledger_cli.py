"""`orchestra ledger path|show|verify|recover`: the verdict in words, exit codes, and bad input."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.ledger.lines import describe_os_error
from tests.conftest import git
from tests.core.test_ledger_kit import (
    append_in_process,
    decision_id,
    fleet_like_ledger,
    ledger_of,
    reject_fields,
    rewrite,
    signing_setup,
)


def run_cli(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-C", str(repo), "ledger", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_verify_says_what_it_proved(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet_like_ledger(repo)
    code, out, err = run_cli(capsys, repo, "verify")
    assert code == 0 and err == ""
    first, *notes = out.splitlines()
    assert first == "ledger ok: 5 entries (0 signed), chain intact, anchored in git at refs/orchestra/ledger"
    assert "entries are not signed" in notes[0] and "not who wrote an entry" in notes[0]


def test_verify_of_a_signed_ledger(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signing_setup(repo, tmp_path / "keys")
    fleet_like_ledger(repo)
    code, out, _ = run_cli(capsys, repo, "verify", "--require-signed")
    assert code == 0
    assert out.strip() == "ledger ok: 5 entries (5 signed), chain intact, anchored in git at refs/orchestra/ledger"


def test_verify_fails_with_the_problems_on_stderr(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = fleet_like_ledger(repo)
    entries = ledger.entries()
    rewrite(ledger, entries[:-1])
    code, out, err = run_cli(capsys, repo, "verify")
    assert code == 1 and out == ""
    assert err.startswith("ledger FAILED verification (") and "its anchor in git (refs/orchestra/ledger) records 5" in err


def test_require_signed_fails_on_unsigned_entries(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet_like_ledger(repo)
    code, _, err = run_cli(capsys, repo, "verify", "--require-signed")
    assert code == 1 and "5 of 5 entries are not signed" in err


def test_verify_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = fleet_like_ledger(repo)
    code, out, _ = run_cli(capsys, repo, "verify", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["count"] == 5 and data["anchor"] == "refs/orchestra/ledger"
    assert data["path"] == str(ledger.path) and data["problems"] == []
    ledger.head_path.write_text('{"count": 9, "hash": "x"}')
    code, out, err = run_cli(capsys, repo, "verify", "--json")
    assert code == 1 and not json.loads(out)["ok"] and "FAILED" in err and len(err.splitlines()) == 1


def test_show_marks_forced_recovered_and_signed_entries(repo: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ledger = ledger_of(repo)
    ledger.append(reject_fields("r1", forced=True, unready=["tests failed", "review pending"]))
    ledger.append(reject_fields("r2", recovered=True))
    signing_setup(repo, tmp_path / "keys")
    ledger.append(reject_fields("r3"))
    code, out, _ = run_cli(capsys, repo, "show")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert "[FORCED: tests failed, review pending]" in lines[0] and "“not needed”" in lines[0]
    assert "[recovered after a crash]" in lines[1]
    assert "[signed by conductor@example.test]" in lines[2]
    code, out, _ = run_cli(capsys, repo, "show", "--json")
    assert out.splitlines() == ledger.path.read_text().splitlines()


def test_show_marks_autonomy_demotions_and_approvals(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = ledger_of(repo)
    ledger.append({**reject_fields("r1"), "action": "accept", "actor": "policy", "autonomy": "auto",
                   "granted_by": "Ada <ada@x>"})
    ledger.append({"action": "revoke", "decision": "d-2", "spec": "fix", "agent": "coder", "level": "manual",
                   "actor": "policy", "demoted": True, "cause": "secret", "reason": "a key in src/k.py"})
    ledger.append({**reject_fields("r3"), "action": "approve", "actor": "Bob <bob@x>", "counted": ["Bob <bob@x>"],
                   "needed": 2})
    ledger.append({**reject_fields("r3"), "action": "accept", "approvals": ["Bob <bob@x>", "Ada <ada@x>"]})
    code, out, _ = run_cli(capsys, repo, "show")
    lines = out.splitlines()
    assert code == 0 and "[AUTO: accepted by policy, autonomy granted by Ada <ada@x>]" in lines[0]
    assert "DEMOTED by policy (secret)" in lines[1] and "“a key in src/k.py”" in lines[1]
    assert "[approval 1 of 2]" in lines[2] and "[approved by Bob <bob@x>, Ada <ada@x>]" in lines[3]


def test_recover_from_the_command_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    append_in_process(repo, "r0", decision_id(0))
    assert append_in_process(repo, "r1", decision_id(1), fault="ledger.after-line") == -9
    code, out, _ = run_cli(capsys, repo, "verify")
    assert code == 0 and "an append was interrupted (entry 1)" in out
    code, out, _ = run_cli(capsys, repo, "recover")
    assert code == 0 and "completed the interrupted append of entry 1" in out
    code, out, _ = run_cli(capsys, repo, "recover")
    assert code == 0 and "nothing to recover" in out


@pytest.mark.parametrize("action", ["path", "show", "verify", "recover"])
def test_a_ledger_path_that_is_a_directory(repo: Path, action: str, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".git" / "orchestra" / "ledger.jsonl").mkdir(parents=True)
    code, out, err = run_cli(capsys, repo, action)
    assert code == 1 and out == ""
    assert err.strip().endswith("ledger.jsonl is a directory, not a file") and len(err.splitlines()) == 1


def test_a_state_directory_that_is_a_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".git" / "orchestra").write_text("")
    code, _, err = run_cli(capsys, repo, "show")
    assert code == 1 and "a part of it is a file, not a directory" in err and len(err.splitlines()) == 1


def test_an_unreadable_ledger_is_named_in_one_line() -> None:
    error = PermissionError(errno.EACCES, "Permission denied", "/r/.git/orchestra/ledger.jsonl")
    assert describe_os_error(Path("/r/.git/orchestra/ledger.jsonl"), error) == (
        "the ledger at /r/.git/orchestra/ledger.jsonl cannot be accessed: permission denied")


def test_a_broken_anchor_ref_is_reported(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet_like_ledger(repo)
    git(repo, "update-ref", "refs/orchestra/ledger", git(repo, "rev-parse", "main"))
    code, _, err = run_cli(capsys, repo, "verify")
    assert code == 1 and "does not point at a ledger anchor commit" in err
