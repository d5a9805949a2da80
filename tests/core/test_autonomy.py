"""Graduated autonomy (issue 12): granted and revoked by a named human through the ledger, capped but never
raised by the committed score, and suggested (never given) from the track record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.base.errors import ActionRefused
from orchestra.core.fleet import Fleet
from orchestra.core.fleet.autonomy import Autonomy
from orchestra.core.score import ConfigError
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_settled

ACTOR = "Test Conductor <conductor@example.test>"  # tests/conftest.py's git identity


def fleet_with(make_fleet: MakeFleet, repo: Path, **spec: object) -> Fleet:
    text = score_text({"coder": "echo done >> work.txt", "tester": "echo tested >> tests.txt"},
                      [{"id": "work", "intent": "write work.txt", **spec}])
    return make_fleet(repo, text + "\n[autonomy]\npromote_after = 2\n")


def standing(fleet: Fleet, agent: str = "coder"):
    return Autonomy(fleet).standing("work", agent)


def test_a_grant_and_a_revoke_are_ledger_entries_naming_who(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    assert standing(fleet).level == "manual" and fleet.ledger.entries() == []

    Autonomy(fleet).grant("work", "coder", ACTOR, reason="ten clean runs")
    granted = standing(fleet)
    assert (granted.level, granted.granted_by) == ("auto", ACTOR) and standing(fleet, "tester").level == "manual"
    entry = fleet.ledger.entries()[-1]
    assert (entry["action"], entry["spec"], entry["agent"], entry["level"], entry["actor"], entry["reason"]) == (
        "grant", "work", "coder", "auto", ACTOR, "ten clean runs")
    with pytest.raises(ActionRefused, match="already has autonomy auto, granted by"):
        Autonomy(fleet).grant("work", "coder", ACTOR)

    Autonomy(fleet).revoke("work", "coder", "Other Person <o@example.test>")
    assert standing(fleet).level == "manual" and fleet.ledger.entries()[-1]["action"] == "revoke"
    assert fleet.ledger.verify().ok
    with pytest.raises(ActionRefused, match="no autonomy to revoke"):
        Autonomy(fleet).revoke("work", "coder", ACTOR)


def test_the_score_can_cap_autonomy_but_never_grant_it(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    Autonomy(fleet).grant("work", "coder", ACTOR)
    capped = fleet_with(make_fleet, repo, max_autonomy="manual")  # committed after the grant
    now = standing(capped)
    assert (now.granted, now.cap, now.level) == ("auto", "manual", "manual")
    with pytest.raises(ActionRefused, match="caps spec 'work' at 'manual'"):
        Autonomy(capped).grant("work", "tester", ACTOR)
    assert [e["action"] for e in capped.ledger.entries()] == ["grant"]  # nothing written by the refusal
    # The highest value a score can write is the default ceiling: it grants nothing.
    uncapped = fleet_with(make_fleet, repo, max_autonomy="auto")
    assert standing(uncapped, "tester").level == "manual"


def test_a_bad_max_autonomy_is_a_clear_score_problem(repo: Path, make_fleet: MakeFleet) -> None:
    with pytest.raises(ConfigError, match=r"invalid max_autonomy 'always': expected one of manual, auto"):
        fleet_with(make_fleet, repo, max_autonomy="always")


def test_promotion_is_suggested_from_the_track_record_and_never_given(repo: Path, make_fleet: MakeFleet,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fleet = fleet_with(make_fleet, repo, agents=["coder"],
                       verify=[{"name": "check", "command": "test -s work.txt"}])
    accepted = []
    for expected in (1, 2):
        run = wait_settled(fleet, fleet.spawn("work")[0].id)
        fleet.accept(run.id)
        accepted.append(run.id)
        assert standing(fleet).streak == expected
    assert standing(fleet).suggest_promotion and standing(fleet).level == "manual"  # suggested, not given
    assert standing(fleet).streak_runs == tuple(accepted)  # the evidence: which runs
    capsys.readouterr()
    assert main(["-C", str(fleet.repo.root), "autonomy", "show"]) == 0
    assert f"2 ready runs accepted in a row ({', '.join(accepted)}); promotion suggested" in capsys.readouterr().out
    fleet.revert(run.id)  # the latest accepted change was reverted: the record says so
    assert standing(fleet).streak == 0 and not standing(fleet).suggest_promotion


def test_autonomy_from_the_command_line(repo: Path, make_fleet: MakeFleet, capsys: pytest.CaptureFixture[str]) -> None:
    fleet_with(make_fleet, repo)
    capsys.readouterr()
    assert main(["-C", str(repo), "autonomy", "grant", "work", "coder", "--reason", "trusted"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"work/coder is now auto, granted by {ACTOR}")
    assert "accepted by policy when their gates next settle" in out
    assert main(["-C", str(repo), "autonomy", "show", "--json"]) == 0
    shown = {(s["spec"], s["agent"]): s for s in json.loads(capsys.readouterr().out)}
    assert shown[("work", "coder")]["level"] == "auto" and shown[("work", "tester")]["level"] == "manual"
    assert main(["-C", str(repo), "autonomy", "show"]) == 0
    assert f"work/coder: auto, granted by {ACTOR}." in capsys.readouterr().out
    assert main(["-C", str(repo), "autonomy", "revoke", "work", "coder"]) == 0
    assert capsys.readouterr().out.startswith(f"work/coder is now manual, revoked by {ACTOR}")
    assert main(["-C", str(repo), "autonomy", "grant", "work"]) == 2
    assert "needs a spec and an agent" in capsys.readouterr().err
    assert main(["-C", str(repo), "autonomy", "grant", "work", "nobody"]) == 1
    assert "no spec 'work' run by agent 'nobody' (its pairs: work/coder, work/tester)" in capsys.readouterr().err
