"""`orchestra prune`: what decided runs left goes, and never anything that holds unmerged or unsaved work."""

from __future__ import annotations

import json
import time
from pathlib import Path

from orchestra.core.fleet import Fleet
from orchestra.core.fleet.prune import DAY, Pruner, PruneReport
from orchestra.core.runs.run import Run
from orchestra.core.supervise.processes import supervisor_alive
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, score_text, wait_settled

FIX = "printf 'def answer():\\n    return 42\\n' > src/app.py"
PRECIOUS = f"{FIX}; echo 'my notes' > notes.local"  # ignored by the repository, and not disposable
DETACHED = ("git checkout -q --detach && echo detached > d.txt && git add d.txt && "
            "git -c user.name=a -c user.email=a@b commit -q -m 'on a detached head'")


def fleet_of(make_fleet: MakeFleet, repo: Path, **agents: str) -> Fleet:
    (repo / ".gitignore").write_text("*.local\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore local files")
    return make_fleet(repo, score_text(dict(agents), [
        {"id": f"by-{name}", "intent": "Make answer() return 42", "agents": [name]} for name in agents]))


def reviewed(fleet: Fleet, agent: str) -> Run:
    run = wait_settled(fleet, fleet.spawn(f"by-{agent}")[0].id)
    assert run.state == "review", run.message
    return run


def prune(fleet: Fleet, **options: object) -> PruneReport:
    return Pruner(fleet, **options).prune()  # type: ignore[arg-type]


def branch_exists(repo: Path, branch: str) -> bool:
    return bool(git(repo, "for-each-ref", f"refs/heads/{branch}"))


def removed(report: PruneReport, run: Run) -> set[str]:
    return {item.what for item in report.removed if item.run == run.id}


def kept(report: PruneReport, run: Run) -> dict[str, str]:
    return {item.what: item.why for item in report.kept if item.run == run.id}


def everything(repo: Path, fleet: Fleet) -> dict[str, object]:
    """Every ref, and every file orchestra keeps for the repository, with its content."""
    places = (fleet.repo.state_dir, fleet.repo.worktrees_dir, fleet.repo.jails_dir)
    files = {str(path): path.read_bytes() for place in places if place.exists()
             for path in sorted(place.rglob("*")) if path.is_file() and not path.name.endswith(".lock")}
    return {"refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"), "files": files}


# -- what goes -----------------------------------------------------------------------------------------

def test_a_merged_run_loses_its_worktree_branch_jail_and_logs_once_nothing_in_them_would_be_lost(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_of(make_fleet, repo, keeper=PRECIOUS)
    run = fleet.accept(reviewed(fleet, "keeper").id)
    worktree = Path(run.worktree)
    assert run.kept and (worktree / "notes.local").is_file()

    report = prune(fleet)

    # The worktree holds a file no commit has: it stays, and so does everything else of the run.
    assert "not disposable" in kept(report, run)["worktree"] and "notes.local" in kept(report, run)["worktree"]
    assert (worktree / "notes.local").read_text() == "my notes\n"
    assert branch_exists(repo, run.branch) and fleet.store.run_dir(run.id).is_dir()

    (worktree / "notes.local").unlink()
    report = prune(fleet)

    assert {"worktree", "branch", "logs"} <= removed(report, run), report.lines()
    assert not worktree.exists() and not branch_exists(repo, run.branch)
    assert not fleet.store.run_dir(run.id).exists() and not (fleet.repo.jails_dir / run.id).exists()
    assert run.id not in [r.id for r in fleet.runs()]
    assert git(repo, "show", "main:src/app.py") == "def answer():\n    return 42"  # the merge is untouched
    assert cli("ledger", "verify", cwd=repo).returncode == 0


def test_a_rejected_runs_branch_and_kept_commits_go_only_with_rejected_and_the_output_says_so(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_of(make_fleet, repo, detacher=DETACHED)
    run = fleet.reject(reviewed(fleet, "detacher").id, "no")
    kept_ref = next(escape["ref"] for escape in run.escapes if escape.get("ref"))

    report = prune(fleet)

    assert "--rejected deletes it" in kept(report, run)["branch"] and "ref" in kept(report, run)
    assert branch_exists(repo, run.branch) and git(repo, "for-each-ref", kept_ref)
    assert fleet.store.run_dir(run.id).is_dir()

    done = cli("prune", "--rejected", cwd=repo)

    assert done.returncode == 0, done.stderr
    assert "work is gone" in done.stdout and run.branch in done.stdout
    assert not branch_exists(repo, run.branch) and not git(repo, "for-each-ref", kept_ref)
    assert not fleet.store.run_dir(run.id).exists()


def test_older_than_leaves_runs_decided_more_recently(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_of(make_fleet, repo, fixer=FIX)
    run = fleet.accept(reviewed(fleet, "fixer").id)

    report = prune(fleet, older_than_days=1)

    assert "days ago" in kept(report, run)["run"] and branch_exists(repo, run.branch)
    report = prune(fleet, older_than_days=1, now=time.time() + 2 * DAY)
    assert "branch" in removed(report, run) and not branch_exists(repo, run.branch)


# -- what never goes -----------------------------------------------------------------------------------

def test_an_accepted_branch_the_target_no_longer_holds_is_kept(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_of(make_fleet, repo, fixer=FIX)
    run = fleet.accept(reviewed(fleet, "fixer").id)
    git(repo, "reset", "-q", "--hard", "HEAD~1")  # the user undoes the merge: the work is only on the branch

    for report in (prune(fleet), prune(fleet, rejected=True, older_than_days=0)):
        assert "main does not hold it" in kept(report, run)["branch"]
        assert "logs" not in removed(report, run)
    assert git(repo, "show", f"{run.branch}:src/app.py") == "def answer():\n    return 42"
    assert fleet.store.run_dir(run.id).is_dir()


def test_undecided_runs_are_never_touched(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_of(make_fleet, repo, fixer=FIX, failer="echo half > half.txt; exit 3")
    waiting = reviewed(fleet, "fixer")
    failed = wait_settled(fleet, fleet.spawn("by-failer")[0].id)
    assert failed.state == "failed"
    assert supervisor_alive(fleet.get(waiting.id))

    report = prune(fleet, rejected=True, older_than_days=0)

    for run in (waiting, failed):
        assert kept(report, run) == {"run": f"not decided ({run.state}): prune never touches it"}
        assert removed(report, run) == set()
        assert Path(run.worktree).is_dir() and branch_exists(repo, run.branch)
        assert fleet.store.run_dir(run.id).is_dir()
    assert supervisor_alive(fleet.get(waiting.id))


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_of(make_fleet, repo, fixer=FIX, other=FIX)
    merged = fleet.accept(reviewed(fleet, "fixer").id)
    rejected = fleet.reject(reviewed(fleet, "other").id, "no")
    before = everything(repo, fleet)

    done = cli("prune", "--dry-run", "--rejected", "--json", cwd=repo)

    assert done.returncode == 0, done.stderr
    assert everything(repo, fleet) == before
    report = json.loads(done.stdout)
    assert report["dry_run"] is True
    assert {(item["run"], item["what"]) for item in report["removed"]} >= {
        (merged.id, "branch"), (merged.id, "logs"), (rejected.id, "branch"), (rejected.id, "logs")}
    assert "Dry run: nothing was changed." in cli("prune", "--dry-run", cwd=repo).stdout
    assert everything(repo, fleet) == before


def test_bad_usage_exits_2(repo: Path) -> None:
    done = cli("prune", "--older-than", "-1", cwd=repo)
    assert done.returncode == 2 and "number of days" in done.stderr
