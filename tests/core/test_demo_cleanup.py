"""`orchestra demo` removes the demos it made before whose runs are all decided, and keeps every other one."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestra.core.fleet import Fleet
from orchestra.core.fleet.prune import prune_demos
from orchestra.core.git.repo import data_home
from orchestra.core.onboarding.demo import create_demo
from orchestra.core.supervise.processes import supervisor_alive
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, score_text, wait_settled

def demo_with_a_run(make_fleet: MakeFleet, root: Path, command: str = "echo done > done.txt") -> tuple[Fleet, str]:
    """A demo repository whose score has one quick agent, with one run of it in review."""
    create_demo(root, python=sys.executable)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("*.local\n")  # ignored, and not disposable
    fleet = make_fleet(root, score_text({"quick": command}, [{"id": "quick", "intent": "work", "agents": ["quick"]}]))
    run = wait_settled(fleet, fleet.spawn("quick")[0].id)
    assert run.state == "review", run.message
    return fleet, run.id


def test_only_demos_whose_runs_are_all_decided_and_that_hold_nothing_unsaved_are_removed(
        tmp_path: Path, make_fleet: MakeFleet) -> None:
    demos = data_home() / "demos"
    decided, decided_run = demo_with_a_run(make_fleet, demos / "demo-1")
    decided.reject(decided_run, "done with it")
    undecided, undecided_run = demo_with_a_run(make_fleet, demos / "demo-2")
    create_demo(demos / "demo-3")  # never used: nothing in it to lose
    dirty = create_demo(demos / "demo-4")
    (dirty / "calc" / "stats.py").write_text("# the user's own edit\n")
    kept, kept_run = demo_with_a_run(make_fleet, demos / "demo-5", "echo mine > notes.local")
    assert kept.reject(kept_run, "no").kept
    (demos / "not-a-demo").mkdir()
    (demos / "not-a-demo" / "file.txt").write_text("mine\n")
    places = (decided.repo.worktrees_dir, decided.repo.jails_dir)
    assert all(place.exists() for place in places)

    cleaned = prune_demos(demos)

    assert [path.name for path in cleaned.removed] == ["demo-1", "demo-3"]
    assert {path.name: why for path, why in cleaned.kept} == {
        "demo-2": "1 undecided run(s)", "demo-4": "uncommitted changes in its checkout",
        "demo-5": "a worktree is still there (a decision kept it)"}
    assert (Path(kept.get(kept_run).worktree) / "notes.local").read_text() == "mine\n"
    assert not (demos / "demo-1").exists() and not (demos / "demo-3").exists()
    assert not any(place.exists() for place in places)
    assert (dirty / "calc" / "stats.py").read_text() == "# the user's own edit\n"
    assert (demos / "not-a-demo" / "file.txt").read_text() == "mine\n"
    run = undecided.get(undecided_run)
    assert run.state == "review" and Path(run.worktree).is_dir() and supervisor_alive(run)
    assert "demo-1" in (cleaned.line() or "") and "demo-2 (1 undecided run(s))" in (cleaned.line() or "")


def test_orchestra_demo_says_which_older_demos_it_removed(tmp_path: Path, make_fleet: MakeFleet) -> None:
    create_demo(data_home() / "demos" / "demo-1")
    new = tmp_path / "new-demo"

    done = cli("demo", str(new), "--no-open", timeout=120)
    make_fleet(new)  # its runs are rejected at teardown

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "Removed 1 older demo(s) whose runs were all decided: demo-1."
    assert not (data_home() / "demos" / "demo-1").exists() and (new / ".orchestra-demo").is_file()
