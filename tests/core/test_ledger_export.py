"""The ledger for an audit (issue 12): each accept's sign-off as a git note on its merge, and `orchestra ledger
export` as JSON lines, CSV, or in-toto Statements (v1) that validate against the Statement layout."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest

from orchestra.cli import main
from orchestra.core.base.canonical import canonical_json
from orchestra.core.fleet import Fleet
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import fleet_in_review, wait_settled

# The in-toto Statement v1 layout (github.com/in-toto/attestation, spec/v1/statement.md and
# resource_descriptor.md): a subject needs a digest, each digest maps an algorithm to a hex value.
STATEMENT_V1 = {
    "type": "object",
    "required": ["_type", "subject", "predicateType", "predicate"],
    "properties": {
        "_type": {"const": "https://in-toto.io/Statement/v1"},
        "subject": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["digest"],
            "properties": {"name": {"type": "string"}, "digest": {
                "type": "object", "minProperties": 1,
                "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]+$"}}}}},
        "predicateType": {"type": "string", "format": "uri", "pattern": "^https://"},
        "predicate": {"type": "object"},
    },
}


@pytest.fixture
def decided(repo: Path, make_fleet: MakeFleet) -> Fleet:
    """One run accepted, a second rejected, the first reverted: four kinds of decision on record."""
    fleet, first = fleet_in_review(make_fleet, repo)
    second = wait_settled(fleet, fleet.spawn("work")[0].id)
    fleet.accept(first)
    fleet.reject(second.id, reason="one is enough")
    (repo / "later.txt").write_text("later\n")
    git(repo, "add", "later.txt")
    git(repo, "commit", "-q", "-m", "later work")
    fleet.revert(first, reason="undo for the audit test")
    return fleet


def export(repo: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> str:
    capsys.readouterr()
    assert main(["-C", str(repo), "ledger", "export", "--format", fmt]) == 0
    return capsys.readouterr().out


def test_an_accept_leaves_its_sign_off_as_a_git_note_on_its_merge(repo: Path, decided: Fleet) -> None:
    accept = next(e for e in decided.ledger.entries() if e["action"] == "accept")
    shown = git(repo, "log", "--notes=orchestra", "--format=%H%n%N", "-n", "1", accept["merge_commit"])
    commit, note = shown.split("\n", 1)
    assert commit == accept["merge_commit"] and json.loads(note) == accept
    assert git(repo, "rev-parse", "--verify", "-q", "refs/notes/orchestra")  # pushing it is the user's choice


def test_jsonl_export_is_the_ledger_entry_by_entry(repo: Path, decided: Fleet,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lines = export(repo, capsys, "jsonl").splitlines()
    assert lines == [canonical_json(entry) for entry in decided.ledger.entries()]
    assert [json.loads(line)["action"] for line in lines] == ["accept", "reject", "revert"]


def test_in_toto_statements_validate_and_name_what_each_decision_is_about(
        repo: Path, decided: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    statements = [json.loads(line) for line in export(repo, capsys, "in-toto").splitlines()]
    entries = decided.ledger.entries()
    assert len(statements) == len(entries) == 3
    for statement in statements:
        jsonschema.validate(statement, STATEMENT_V1, format_checker=jsonschema.FormatChecker())
    accept, reject, revert = statements
    merge = entries[0]["merge_commit"]
    tree = git(repo, "rev-parse", f"{merge}^{{tree}}")
    assert accept["subject"][0]["digest"] == {"gitCommit": merge, "gitTree": tree}
    predicate = accept["predicate"]
    assert (predicate["action"], predicate["actor"], predicate["decision"]) == (
        "accept", entries[0]["actor"], entries[0]["decision"])
    assert predicate["spec"] == {"id": "work", "sha256": entries[0]["spec_hash"]}
    assert [(g["name"], g["status"], g["tree"]) for g in predicate["gates"]] == [
        (g["name"], g["status"], g["tree"]) for g in entries[0]["gates"]]
    assert predicate["ledger"] == {"seq": entries[0]["seq"], "hash": entries[0]["hash"], "prev": entries[0]["prev"]}
    assert predicate["signature"] is None and predicate["approvals"] == []  # unsigned here: said, not hidden
    assert reject["subject"][0]["digest"]["gitCommit"] == entries[1]["candidate"]
    assert reject["predicate"]["why"] == "one is enough"
    head = git(repo, "rev-parse", "main")
    assert revert["subject"][0]["digest"]["gitCommit"] == head
    assert revert["predicate"]["reverts"] == {"entry": entries[0]["hash"], "decision": entries[0]["decision"],
                                              "merge": merge}


def test_csv_export_has_a_row_per_decision(repo: Path, decided: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    rows = list(csv.DictReader(io.StringIO(export(repo, capsys, "csv"))))
    entries = decided.ledger.entries()
    assert [(row["action"], row["run"], row["hash"]) for row in rows] == [
        (e["action"], e["run"], e["hash"]) for e in entries]
    assert rows[0]["merge_commit"] == entries[0]["merge_commit"]
    assert rows[0]["gates"] == "boundary:passed secrets:passed check:passed"
    assert rows[1]["reason"] == "one is enough" and rows[2]["revert_commit"] == entries[2]["revert_commit"]
    assert {row["signed"] for row in rows} == {"False"}


def test_a_ledger_that_fails_verification_is_not_exported(repo: Path, decided: Fleet, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = decided.ledger.path
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("one is enough", "one is plenty")  # an altered reason
    path.write_text("".join(lines))
    out = tmp_path / "audit.jsonl"
    capsys.readouterr()
    assert main(["-C", str(repo), "ledger", "export", "--output", str(out)]) == 1
    assert "fails verification, so it is not exported" in capsys.readouterr().err and not out.exists()


def test_export_to_a_file(repo: Path, decided: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit.intoto.jsonl"
    capsys.readouterr()
    assert main(["-C", str(repo), "ledger", "export", "--format", "in-toto", "--output", str(out)]) == 0
    assert "Exported 3 decisions as in-toto to" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 3


def test_an_accept_by_policy_and_a_demotion_say_so_in_the_export() -> None:
    from orchestra.core.ledger.export import csv_lines, predicate
    auto = {"action": "accept", "actor": "policy", "autonomy": "auto", "granted_by": "Ada <ada@x>", "grant": "h1",
            "approvals": []}
    assert predicate(auto)["autonomy"] == {"level": "auto", "granted_by": "Ada <ada@x>", "grant": "h1"}
    demoted = {"action": "revoke", "actor": "policy", "demoted": True, "cause": "secret", "granted_by": "Ada <ada@x>"}
    assert predicate(demoted)["demoted"] == {"cause": "secret", "granted_by": "Ada <ada@x>"}
    assert predicate({"action": "reject"})["autonomy"] is None
    rows = "".join(csv_lines([{**auto, "approvals": ["Bob <b@x>", "Cy <c@x>"]}])).splitlines()
    header = rows[0].split(",")
    assert "granted_by" in header and "Ada <ada@x>" in rows[1] and "Bob <b@x> ; Cy <c@x>" in rows[1]
