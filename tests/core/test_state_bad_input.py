"""Bad state on disk gets a clear message and loses nothing: stray files, damaged records, hostile ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.core.base.errors import ActionRefused, RunNotFound
from orchestra.core.fleet import Fleet
from orchestra.core.runs.feed import FleetFeed
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, score_text, wait_settled


def two_runs(make_fleet: MakeFleet, repo: Path) -> tuple[Fleet, str, str]:
    fleet = make_fleet(repo, score_text({"a": "echo a > a.txt", "b": "echo b > b.txt"},
                                        [{"id": "work", "intent": "work"}]))
    first, second = (wait_settled(fleet, run.id).id for run in fleet.spawn("work"))
    return fleet, first, second


def assert_no_traceback(done) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr


def test_stray_files_in_the_runs_directory_are_ignored_everywhere(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, first, second = two_runs(make_fleet, repo)
    runs_dir = fleet.store.runs_dir
    (runs_dir / f"{first}~").write_text("an editor's backup\n")
    (runs_dir / ".run.json.swp").write_bytes(b"\0\1")
    (runs_dir / "notes").mkdir()
    (runs_dir / "r99").mkdir()  # a spawn that died before writing its record

    assert [run.id for run in fleet.runs()] == [first, second]
    done = cli("-C", str(repo), "runs", "--json")
    assert done.returncode == 0 and [run["id"] for run in json.loads(done.stdout)] == [first, second]
    feed = FleetFeed(fleet.store)
    assert set(feed.changed({str(path) for path in runs_dir.iterdir()})) == {first, second}
    assert fleet.store.strays() == sorted([".run.json.swp", "notes", "r99", f"{first}~"])
    doctor = cli("-C", str(repo), "doctor")
    assert f"{first}~" in doctor.stdout and "r99" in doctor.stdout, doctor.stdout


def test_a_damaged_run_record_shows_as_damaged_and_can_still_be_rejected(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, first, second = two_runs(make_fleet, repo)
    record = fleet.store.run_dir(first) / "run.json"
    intact = record.read_bytes()
    record.write_bytes(intact[: len(intact) // 2])  # truncated

    listed = {run.id: run for run in fleet.runs()}
    assert listed[first].damaged and "run.json cannot be read" in listed[first].message
    assert not listed[second].damaged and listed[second].state == "review"
    done = cli("-C", str(repo), "runs", "--json")
    assert done.returncode == 0, done.stderr
    shown = {run["id"]: run for run in json.loads(done.stdout)}
    assert shown[first]["damaged"] is True and shown[second]["damaged"] is False

    accept = cli("-C", str(repo), "accept", first)
    assert accept.returncode == 1 and "damaged" in accept.stderr and "rejected" in accept.stderr
    assert_no_traceback(accept)
    with pytest.raises(ActionRefused, match="damaged"):
        fleet.accept(first)

    rejected = fleet.reject(first, "its record was lost")

    assert rejected.state == "rejected" and not rejected.damaged
    assert fleet.ledger.entries()[-1]["damaged"] is True and fleet.ledger.entries()[-1]["run"] == first
    assert [p.read_bytes() for p in record.parent.glob("run.json.damaged-*")] == [intact[: len(intact) // 2]]
    assert fleet.get(first).state == "rejected"
    # The other run is unaffected.
    assert fleet.accept(second).state == "accepted"


@pytest.mark.parametrize("run_id", ["r" * 5000, "r1/../r2", "../../etc", "", "R1", "r0"])
def test_run_ids_are_checked_before_they_touch_the_file_system(repo: Path, make_fleet: MakeFleet,
                                                               run_id: str) -> None:
    fleet, first, _second = two_runs(make_fleet, repo)
    with pytest.raises(RunNotFound, match="not a run id"):
        fleet.get(run_id)
    done = cli("-C", str(repo), "reject", run_id, "--reason", "x")
    assert done.returncode == 1 and "not a run id" in done.stderr and len(done.stderr) < 400
    assert_no_traceback(done)
    assert fleet.get(first).state == "review"


def test_an_unreadable_journal_entry_is_set_aside_not_fatal(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, first, _second = two_runs(make_fleet, repo)
    fleet.journal.dir.mkdir(parents=True, exist_ok=True)
    (fleet.journal.dir / "broken.json").write_text("{not json")

    done = cli("-C", str(repo), "runs")

    assert done.returncode == 0 and first in done.stdout, done.stderr
    assert (fleet.journal.dir / "broken.unreadable").exists()
    assert git(repo, "status", "--porcelain") == ""
