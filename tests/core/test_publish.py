"""Publishing a run: its branch pushed to a remote, a pull request opened with gh (or a compare URL), a
`publish` entry in the ledger."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from orchestra.core.base.errors import ActionRefused
from orchestra.core.base.findings import Finding
from orchestra.core.fleet import Fleet
from orchestra.core.fleet.publish import PublishRefused, publish_run, pull_request_body
from orchestra.core.git.remotes import compare_url, without_credentials
from orchestra.core.runs.run import Gate, Run
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import ledger_lines, notes, score_text, wait_settled, wait_state
from tests.core.test_crash_decisions import orchestra

PR_URL = "https://github.com/o/r/pull/7"
FAKE_GH = f"""#!/bin/sh
printf '%s\\n' "$@" > "$GH_LOG/args"
while [ $# -gt 0 ]; do
  if [ "$1" = "--body-file" ]; then cp "$2" "$GH_LOG/body"; fi
  shift
done
echo "Creating pull request"
echo "{PR_URL}"
"""


def fleet_in_review(make_fleet: MakeFleet, repo: Path) -> tuple[Fleet, Run]:
    fleet = make_fleet(repo, score_text({"coder": "printf 'def answer():\\n    return 42\\n' > src/app.py"}, [
        {"id": "fix", "intent": "Make answer() return 42", "allow": ["src/**"],
         "verify": [{"name": "check", "command": "grep -q 42 src/app.py"}]}]))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    assert run.state == "review", run.message
    return fleet, run


def bare_remote(repo: Path, tmp_path: Path, url: str | None = None) -> Path:
    """A bare repository as origin (its URL, when given, is what the web sees; pushes go to the bare one)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", url or str(remote))
    if url:
        git(repo, "config", "remote.origin.pushurl", str(remote))
    return remote


@pytest.fixture
def path_without_gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding only a fresh bin directory (where a test may put a fake gh) and git's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git_dir = os.path.dirname(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), git_dir]))
    assert shutil.which("gh") is None or Path(shutil.which("gh")).parent == bin_dir
    return bin_dir


def fake_gh(bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "gh-log"
    log.mkdir()
    script = bin_dir / "gh"
    script.write_text(FAKE_GH)
    script.chmod(0o755)
    monkeypatch.setenv("GH_LOG", str(log))
    return log


def test_push_lands_the_branch_opens_a_pull_request_and_is_recorded(
        repo: Path, tmp_path: Path, make_fleet: MakeFleet, path_without_gh: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fleet, run = fleet_in_review(make_fleet, repo)
    remote = bare_remote(repo, tmp_path)
    log = fake_gh(path_without_gh, tmp_path, monkeypatch)

    done = publish_run(fleet, run.id)

    tip = git(repo, "rev-parse", run.branch)
    assert git(remote, "rev-parse", f"refs/heads/{run.branch}") == tip == done.commit
    assert done.pull_request == PR_URL and done.compare is None
    args = (log / "args").read_text().splitlines()
    assert args[:2] == ["pr", "create"]
    assert args[args.index("--base") + 1] == "main" and args[args.index("--head") + 1] == run.branch
    body = (log / "body").read_text()
    assert "Make answer() return 42" in body and "spec `fix`" in body and run.id in body
    assert "| check | passed |" in body and run.gates["check"].tree[:12] in body
    [entry] = [e for e in ledger_lines(fleet) if e["action"] == "publish"]
    assert (entry["remote"], entry["branch"], entry["commit"], entry["pull_request"]) == (
        "origin", run.branch, tip, PR_URL)
    assert any(gate["name"] == "check" for gate in entry["gates"])
    assert fleet.ledger.verify().ok
    assert orchestra(repo, "ledger", "verify").returncode == 0
    assert any(PR_URL in note for note in notes(fleet, run.id))


def test_without_gh_it_gives_the_compare_url_of_a_github_remote(
        repo: Path, tmp_path: Path, make_fleet: MakeFleet, path_without_gh: Path) -> None:
    fleet, run = fleet_in_review(make_fleet, repo)
    remote = bare_remote(repo, tmp_path, url="git@github.com:o/r.git")

    done = publish_run(fleet, run.id)

    assert git(remote, "rev-parse", f"refs/heads/{run.branch}") == done.commit
    assert done.pull_request is None
    assert done.compare == f"https://github.com/o/r/compare/main...{run.branch}?expand=1"
    assert f"Compare and open a pull request: {done.compare}" in done.lines()
    [entry] = [e for e in ledger_lines(fleet) if e["action"] == "publish"]
    assert entry["compare_url"] == done.compare and entry["pull_request"] is None


def test_a_refused_push_says_so_and_records_nothing(
        repo: Path, tmp_path: Path, make_fleet: MakeFleet, path_without_gh: Path) -> None:
    fleet, run = fleet_in_review(make_fleet, repo)
    remote = bare_remote(repo, tmp_path)
    # The remote already has a branch of that name with other history: a push that is not forced is refused.
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    (other / "x.txt").write_text("other\n")
    git(other, "add", "x.txt")
    git(other, "commit", "-q", "-m", "other history")
    git(other, "push", "-q", str(remote), f"HEAD:refs/heads/{run.branch}")

    with pytest.raises(ActionRefused, match="origin refused the push") as refused:
        publish_run(fleet, run.id)

    assert "Nothing was recorded" in str(refused.value)
    assert [e for e in ledger_lines(fleet) if e["action"] == "publish"] == []
    assert not any("published" in note for note in notes(fleet, run.id))


def test_publishing_is_refused_while_the_agent_works(repo: Path, tmp_path: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"coder": "echo started; sleep 30"}, [{"id": "fix", "intent": "wait"}]))
    bare_remote(repo, tmp_path)
    run = wait_state(fleet, fleet.spawn("fix")[0].id, "working")
    with pytest.raises(PublishRefused, match="still working") as refused:
        publish_run(fleet, run.id)
    assert refused.value.exit_status == 3
    fleet.stop(run.id)


def test_the_command_pushes_and_prints_where(repo: Path, tmp_path: Path, make_fleet: MakeFleet,
                                            path_without_gh: Path) -> None:
    _fleet, run = fleet_in_review(make_fleet, repo)
    bare_remote(repo, tmp_path, url="https://gitlab.example.com/group/r.git")
    done = orchestra(repo, "push", run.id)
    assert done.returncode == 0, done.stderr
    assert f"Pushed {run.branch}" in done.stdout
    assert f"https://gitlab.example.com/group/r/-/compare/main...{run.branch}" in done.stdout


def test_compare_urls_and_credentials() -> None:
    assert compare_url("https://github.com/o/r.git", "main", "orchestra/fix/r1/a") == (
        "https://github.com/o/r/compare/main...orchestra/fix/r1/a?expand=1")
    assert compare_url("ssh://git@github.com/o/r.git", "main", "b") == "https://github.com/o/r/compare/main...b?expand=1"
    assert compare_url("/srv/git/r.git", "main", "b") is None
    assert compare_url("https://example.com/o/r.git", "main", "b") is None
    assert without_credentials("https://user:tok3n@github.com/o/r.git") == "https://github.com/o/r.git"


def test_the_pull_request_body_carries_the_review_verdict_and_its_findings() -> None:
    found = [Finding(title="off by one", priority="P1", source="review", path="a.py", line_start=3).to_json(),
             Finding(title="naming", priority="P2", source="review", path="a.py", line_start=9).to_json()]
    tree = "a" * 40
    run = Run(id="r9", agent="coder", spec="fix", task="Make it so", branch="b", worktree="/x", base="0" * 40,
              target="main", agent_config={}, spec_config=None, tree=tree, gates={
                  "check": Gate(name="check", status="passed", tree=tree, summary="4 passed"),
                  "review-bob": Gate(name="review-bob", kind="review", status="failed", tree=tree,
                                     verdict="changes requested", findings=found)})
    body = pull_request_body(run)
    assert "- review-bob: changes requested (2 findings: P1 1, P2 1)" in body
    assert f"| check | passed | `{tree[:12]}` | 4 passed |" in body and "Make it so" in body
