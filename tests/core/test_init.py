"""`orchestra init` writes a starter score, even in a repository with no commits yet, whose target is the
branch the repository is on: a repository on `master` (or any other branch) can spawn at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.onboarding.init import starter_score
from orchestra.core.score import STARTER_TOML, load_score
from tests.core.conftest import MakeFleet
from tests.core.helpers import wait_settled


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def new_repo(path: Path, branch: str, commit: bool = True) -> Path:
    git(path.parent, "init", "-q", "-b", branch, str(path))
    if commit:
        git(path, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "--allow-empty", "-m", "init")
    return path


def init(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["-C", str(repo), "init"])
    return code, capsys.readouterr().out


def test_init_works_before_the_first_commit(tmp_path: Path, capsys) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    assert main(["-C", str(tmp_path), "init"]) == 0
    assert load_score(tmp_path / "orchestra.toml").agents
    assert "Wrote" in capsys.readouterr().out
    assert main(["-C", str(tmp_path), "init"]) == 1  # never overwrites


@pytest.mark.parametrize("branch", ["master", "trunk", "release/2.x"])
def test_init_targets_the_branch_the_repository_is_on(tmp_path: Path, branch: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    repo = new_repo(tmp_path / "repo", branch)

    code, out = init(repo, capsys)

    assert code == 0 and f"target branch {branch}" in out
    assert load_score(repo / "orchestra.toml").target == branch
    # The comment above the line still says what leaving it out means; nothing else changed.
    text = (repo / "orchestra.toml").read_text()
    assert "leave out to use the branch checked out now" in text
    assert text.replace(f'target = "{branch}"', 'target = "main"') == STARTER_TOML


def test_init_before_the_first_commit_targets_the_branch_to_be(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo = new_repo(tmp_path / "fresh", "develop", commit=False)

    code, _ = init(repo, capsys)

    assert code == 0 and load_score(repo / "orchestra.toml").target == "develop"


def test_init_on_a_detached_head_leaves_the_target_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = new_repo(tmp_path / "detached", "master")
    git(repo, "checkout", "-q", "--detach")

    code, out = init(repo, capsys)

    assert code == 0 and load_score(repo / "orchestra.toml").target is None
    assert "no branch is checked out" in out
    assert '\n#target = "main"\n' in (repo / "orchestra.toml").read_text()


def test_a_branch_name_toml_would_misread_is_written_as_a_toml_string() -> None:
    assert 'target = "odd\\"name"' in starter_score('odd"name')


def test_spawn_works_on_master_right_after_init(tmp_path: Path, make_fleet: MakeFleet,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo = new_repo(tmp_path / "repo", "master")
    assert init(repo, capsys)[0] == 0
    fleet = make_fleet(repo, (repo / "orchestra.toml").read_text())  # commits the score, as a user would

    run = wait_settled(fleet, fleet.spawn(fleet.score.specs[0].id)[0].id)

    assert run.target == "master" and run.state == "review", run.message
