"""Agents are untrusted: what a hostile or careless shell agent does to git is kept, checked, never obeyed.

Each test is an attack (or an accident) seen in the field, and what orchestra must do about it: commit
nothing outside the run's own branch, lose no commit or file the agent made, merge exactly what was
reviewed, and never overwrite the user's own files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.core.base.errors import ActionRefused
from orchestra.core.fleet import Fleet
from orchestra.core.jail import probe
from orchestra.core.git.merge import NothingToMerge
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import (cli, commit_vendored_library, ledger_lines, notes, output_lines, score_text, wait_for,
                                wait_settled, wait_state)


def one_agent(make_fleet: MakeFleet, repo: Path, command: str, **spec: object) -> Fleet:
    return make_fleet(repo, score_text({"agent": command}, [{"id": "work", "intent": "do the work", **spec}]))


def settled(fleet: Fleet) -> object:
    return wait_settled(fleet, fleet.spawn("work")[0].id)


def main_log(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%an|%s", "main").splitlines()


# -- the worktree's .git pointed at the user's repository ------------------------------------------

HIJACK = 'echo "gitdir: $(git rev-parse --path-format=absolute --git-common-dir)" > .git'


@pytest.mark.skipif(not probe().works, reason="needs bubblewrap: ./dev test installs it")
def test_a_sandboxed_agent_cannot_rewrite_its_git_file(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_agent(make_fleet, repo, f"{HIJACK} || echo refused; echo work > work.txt")
    before = main_log(repo)

    run = settled(fleet)

    assert run.sandbox["sandboxed"] is True, run.sandbox
    assert run.state == "review" and "refused" in output_lines(fleet, run.id), run.message
    assert (Path(run.worktree) / ".git").read_text().strip() == f"gitdir: {run.gitdir}"
    assert git(repo, "show", f"{run.candidate}:work.txt") == "work" and main_log(repo) == before


def test_an_agent_that_points_its_git_file_at_the_main_repository_gets_nothing_committed_there(
        repo: Path, make_fleet: MakeFleet) -> None:
    """Without a sandbox (sandbox = "off") the agent can rewrite the file; orchestra then trusts none of it."""
    fleet = make_fleet(repo, score_text({"agent": f"{HIJACK}; echo work > work.txt"},
                                        [{"id": "work", "intent": "do the work"}], sandbox="off"))
    before = main_log(repo)

    run = settled(fleet)

    assert run.state == "failed" and ".git" in run.message and "committed nothing" in run.message, run.message
    assert main_log(repo) == before
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(repo, "rev-parse", run.branch) == run.base  # and nothing on its own branch from that worktree
    # Reject still works: recorded, the branch kept, the corrupted worktree left for a human to look at.
    rejected = fleet.reject(run.id, "tampered with git")
    assert rejected.state == "rejected" and rejected.kept and ".git" in rejected.kept["reason"]
    assert Path(run.worktree, "work.txt").read_text() == "work\n"
    assert [e["action"] for e in fleet.ledger.entries()] == ["reject"]


def test_the_review_watcher_never_commits_into_the_users_repository(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_agent(make_fleet, repo, "echo work > work.txt")
    run = settled(fleet)
    assert run.state == "review", run.message
    # The user commits a file of their own on main...
    (repo / "mine.txt").write_text("the user's file\n")
    git(repo, "add", "mine.txt")
    git(repo, "commit", "-q", "-m", "the user's own commit")
    users_tip = git(repo, "rev-parse", "main")
    # ...and something the agent left behind points the worktree at the main repository and edits files.
    worktree = Path(run.worktree)
    (worktree / ".git").write_text(f"gitdir: {repo / '.git'}\n")
    (worktree / "work.txt").write_text("changed during review\n")

    failed = wait_state(fleet, run.id, "failed", timeout=20)

    assert ".git" in failed.message
    assert git(repo, "rev-parse", "main") == users_tip and (repo / "mine.txt").read_text() == "the user's file\n"
    assert "Edits made during review" not in git(repo, "log", "--format=%s", "--all")
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


# -- the agent left its branch -------------------------------------------------------------------

def test_commits_made_on_a_detached_head_are_kept_and_the_review_says_so(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_agent(make_fleet, repo, "git checkout -q --detach && echo detached > d.txt && git add d.txt && "
                                        "git -c user.name=a -c user.email=a@b commit -q -m 'on a detached head'")
    run = settled(fleet)
    assert run.state == "review", run.message
    kept = [escape for escape in run.escapes if escape.get("ref")]
    assert len(kept) == 1 and kept[0]["ref"].startswith(f"refs/orchestra/runs/{run.id}/kept/")
    assert any("left its branch" in escape["what"] and "detached" in escape["what"] for escape in run.escapes)
    assert any("left its branch" in note for note in notes(fleet, run.id))
    # The files it left are the candidate, on the run's own branch.
    assert git(repo, "show", f"{run.candidate}:d.txt") == "detached" and run.changed_paths == ["d.txt"]
    assert git(Path(run.worktree), "symbolic-ref", "HEAD") == f"refs/heads/{run.branch}"

    rejected = fleet.reject(run.id, "no")
    git(repo, "gc", "-q", "--prune=now")

    assert git(repo, "log", "-1", "--format=%s", kept[0]["commit"]) == "on a detached head"
    assert git(repo, "rev-parse", kept[0]["ref"]) == kept[0]["commit"]
    assert rejected.state == "rejected"
    assert any("left its branch" in e for e in fleet.ledger.entries()[-1]["escapes"])


def test_an_agent_that_resets_its_branch_back_has_nothing_to_merge(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_agent(make_fleet, repo, "git reset -q --hard HEAD~1")
    main = git(repo, "rev-parse", "main")
    run = settled(fleet)
    assert run.state == "review", run.message

    # The review shows no change (not the score's deletion), and says the branch moved back.
    assert run.changed_paths == [] and fleet.diff(run) == ""
    assert any("moved its branch back" in escape["what"] for escape in run.escapes)
    with pytest.raises(NothingToMerge, match="Nothing to merge"):
        fleet.accept(run.id, force=True)

    assert git(repo, "rev-parse", "main") == main and ledger_lines(fleet) == []
    assert fleet.get(run.id).state == "review"
    assert fleet.reject(run.id, "did nothing").state == "rejected"


def test_accepting_a_run_that_changed_nothing_makes_no_commit(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_agent(make_fleet, repo, "true")
    run = settled(fleet)
    main = git(repo, "rev-parse", "main")

    with pytest.raises(NothingToMerge, match="Nothing to merge"):
        fleet.accept(run.id)

    assert git(repo, "rev-parse", "main") == main and ledger_lines(fleet) == []


def test_accepting_the_same_change_twice_merges_once(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_agent(make_fleet, repo, "echo same > same.txt")
    first, second = (wait_settled(fleet, run.id) for run in fleet.spawn("work", ["agent", "agent"]))
    fleet.accept(first.id)
    tip = git(repo, "rev-parse", "main")

    with pytest.raises(NothingToMerge):
        fleet.accept(second.id)

    assert git(repo, "rev-parse", "main") == tip
    assert [entry["action"] for entry in fleet.ledger.entries()] == ["accept"]


# -- the user's own files ------------------------------------------------------------------------

def test_accept_never_overwrites_an_ignored_file_in_the_users_checkout(repo: Path, make_fleet: MakeFleet) -> None:
    (repo / ".gitignore").write_text("config/local.env\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "keep local settings out of git")
    fleet = one_agent(make_fleet, repo, "mkdir -p config && echo AGENT=1 > config/local.env && "
                                        "git add -f config/local.env")
    (repo / "config").mkdir()
    (repo / "config" / "local.env").write_text("SECRET=the user's own\n")
    run = settled(fleet)
    assert run.changed_paths == ["config/local.env"]
    main = git(repo, "rev-parse", "main")

    with pytest.raises(ActionRefused, match=r"(?s)would overwrite.*config/local\.env.*Nothing was changed"):
        fleet.accept(run.id, force=True)

    assert (repo / "config" / "local.env").read_text() == "SECRET=the user's own\n"
    assert git(repo, "rev-parse", "main") == main and ledger_lines(fleet) == []


def test_reject_keeps_a_worktree_holding_files_the_agent_wrote_into_an_ignored_directory(
        repo: Path, make_fleet: MakeFleet) -> None:
    (repo / ".gitignore").write_text("out/\nnode_modules/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore build output")
    fleet = one_agent(make_fleet, repo, "mkdir -p out node_modules/x && echo result > out/report.txt && "
                                        "echo dep > node_modules/x/i.js")
    run = settled(fleet)

    rejected = fleet.reject(run.id, "not now")

    assert rejected.kept is not None and rejected.kept["paths"] == ["out/"]
    assert Path(run.worktree, "out", "report.txt").read_text() == "result\n"
    listed = json.loads(cli("-C", str(repo), "runs", "--json").stdout)
    assert listed[0]["kept_worktree"]["paths"] == ["out/"] and "kept" in listed[0]["message"]


def test_a_worktree_with_only_disposable_leftovers_is_removed(repo: Path, make_fleet: MakeFleet) -> None:
    (repo / ".gitignore").write_text("node_modules/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore deps")
    fleet = one_agent(make_fleet, repo, "mkdir -p node_modules/x && echo dep > node_modules/x/i.js && echo w > w.txt")
    run = settled(fleet)

    rejected = fleet.reject(run.id)

    assert rejected.kept is None and not Path(run.worktree).exists()


# -- the policy: the command line asks what the UI asks -------------------------------------------

def test_the_command_line_refuses_a_run_that_is_not_ready_with_exit_3_and_the_reasons(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_agent(make_fleet, repo, "echo x > README.md; echo y > src/new.py", allow=["src/**"],
                      verify=[{"name": "tests", "command": "exit 1"}])
    run = settled(fleet)
    main = git(repo, "rev-parse", "main")

    refused = cli("-C", str(repo), "accept", run.id)

    assert refused.returncode == 3, refused.stderr
    assert "not ready" in refused.stderr and "tests failed" in refused.stderr
    assert "README.md (outside allow)" in refused.stderr and "--force" in refused.stderr
    assert git(repo, "rev-parse", "main") == main and ledger_lines(fleet) == []
    wait_for(lambda: fleet.get(run.id).supervisor_pid, timeout=10, message="the watcher to be resumed")

    forced = cli("-C", str(repo), "accept", run.id, "--force")

    assert forced.returncode == 0, forced.stderr
    entry = fleet.ledger.entries()[-1]
    assert entry["action"] == "accept" and entry["forced"] is True
    assert any("tests failed" in reason for reason in entry["unready"])
    assert any("boundary failed" in reason for reason in entry["unready"])
    shown = cli("-C", str(repo), "ledger", "show").stdout
    assert "forced" in shown.lower()


def test_the_command_line_refuses_a_run_whose_gates_are_still_pending(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_agent(make_fleet, repo, "echo y > y.txt",
                      verify=[{"name": "slow", "command": "sleep 30.417"}])
    run = wait_state(fleet, fleet.spawn("work")[0].id, "review")

    refused = cli("-C", str(repo), "accept", run.id)

    assert refused.returncode == 3 and "slow is still" in refused.stderr, refused.stderr


def test_an_agents_edit_to_a_tracked_file_under_an_ignored_cache_directory_is_merged(
        repo: Path, make_fleet: MakeFleet) -> None:
    commit_vendored_library(repo)
    fleet = one_agent(make_fleet, repo, "echo 'module.exports = 2;' > node_modules/lib/index.js")
    run = settled(fleet)
    assert run.changed_paths == ["node_modules/lib/index.js"]

    fleet.accept(run.id)

    assert (repo / "node_modules" / "lib" / "index.js").read_text() == "module.exports = 2;\n"


def test_the_ledger_records_the_specs_own_hash_for_non_ascii_text(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"agent": "echo x > x.txt"}, [
        {"id": "work", "intent": "Réparer la moyenne — ça doit passer ✓"}]))
    run = settled(fleet)

    fleet.accept(run.id)

    assert fleet.ledger.entries()[-1]["spec_hash"] == fleet.score.spec("work").content_hash()
