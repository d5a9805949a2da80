"""`orchestra stats`: the fleet's outcomes per agent and per spec, read from the ledger (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.fleet.stats import fleet_stats
from orchestra.core.ledger.fields import DecisionFields
from tests.core.conftest import MakeFleet
from tests.core.helpers import fleet_in_review, wait_settled

T = "2026-12-01T12:00:00Z"
T_EPOCH = 1796126400.0  # T as seconds


def entry(action: str, run: str, agent: str = "coder", spec: str = "work", **more) -> DecisionFields:
    return DecisionFields(action=action, run=run, agent=agent, spec=spec, time=more.pop("time", T), **more)


def test_accepts_by_policy_are_counted_apart_and_take_none_of_the_conductors_time() -> None:
    entries = [entry("accept", "r1", review_since=T_EPOCH - 60),
               entry("accept", "r2", actor="policy", granted_by="Ada <a@x>", review_since=T_EPOCH - 600)]
    coder = fleet_stats(entries)["by_agent"]["coder"]
    assert (coder["accepted"], coder["auto_accepted"], coder["conductor_seconds"]) == (2, 1, 60.0)


def test_each_figure_is_counted_as_documented() -> None:
    entries = [
        entry("redirect", "r1"),
        entry("accept", "r1", group="g1", tree="A", review_since=T_EPOCH - 120,
              usage={"prompt_tokens": 1000, "completion_tokens": 500, "cost": 0.10}),
        entry("accept", "r2", group="g1", tree="A", forced=True, review_since=T_EPOCH - 60),
        entry("accept", "r3", group="g2", tree="B"),
        entry("reject", "r4", group="g2", tree="C", review_since=T_EPOCH - 600),
        entry("revert", "r1"),
        entry("accept", "r5", agent="tester", spec="docs", usage={"prompt_tokens": 10, "cost": None}),
        entry("reject", "r0", time="2026-11-01T00:00:00Z"),  # before --since
    ]
    stats = fleet_stats(entries, since="2026-12-01T00:00:00Z")
    coder = stats["by_agent"]["coder"]
    assert stats["decisions"] == 7 and (coder["runs"], coder["accepted"], coder["rejected"]) == (4, 3, 1)
    assert coder["accept_rate"] == 0.75 and coder["redirects"] == 1 and coder["rework"] == 1 / 3
    assert coder["first_try"] == 1 / 3  # r3 only: r1 was redirected, r2 forced
    assert (coder["reverted"], coder["escaped"]) == (1, 1 / 3)
    assert coder["conductor_seconds"] == 120 and coder["timed_decisions"] == 3  # median of 120, 60, 600
    assert (coder["tokens_per_accept"], coder["cost_per_accept"], coder["cost_unknown"]) == (1500, 0.10, 0)
    tester = stats["by_agent"]["tester"]
    assert tester["tokens_per_accept"] == 10 and tester["cost_per_accept"] is None and tester["cost_unknown"] == 1
    assert set(stats["by_spec"]) == {"work", "docs"} and stats["by_spec"]["work"]["runs"] == 4
    assert stats["agreement"] == {"work": {"groups": 2, "agreed": 1, "rate": 0.5}}  # g1 agreed (A, A), g2 not


def test_stats_from_the_command_line_on_a_real_fleet(repo: Path, make_fleet: MakeFleet,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fleet, first = fleet_in_review(make_fleet, repo)
    second = wait_settled(fleet, fleet.spawn("work")[0].id)
    fleet.accept(first)
    fleet.reject(second.id, reason="one is enough")
    capsys.readouterr()
    assert main(["-C", str(repo), "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    coder = stats["by_agent"]["coder"]
    assert (stats["decisions"], coder["runs"], coder["accepted"], coder["accept_rate"]) == (2, 2, 1, 0.5)
    assert coder["timed_decisions"] == 2 and coder["conductor_seconds"] >= 0  # review_since is recorded
    assert main(["-C", str(repo), "stats"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 decisions.") and "coder" in text and "50%" in text


def test_a_bad_since_date_is_refused_clearly(repo: Path, make_fleet: MakeFleet,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fleet_in_review(make_fleet, repo)
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main(["-C", str(repo), "stats", "--since", "last tuesday"])
    assert refused.value.code == 2
    assert "--since: 'last tuesday' is not a date (YYYY-MM-DD" in capsys.readouterr().err
