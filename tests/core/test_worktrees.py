"""Worktree sandboxes on real repositories: create, snapshot, measure, remove — never losing work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestra.core.git import worktrees
from orchestra.core.git.repo import Repository, open_repository
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_settled

AGENT = "coder (orchestra agent) <coder@agents.orchestra.invalid>"


@pytest.fixture
def repository(repo: Path) -> Repository:
    return open_repository(repo)


@pytest.fixture
def worktree(repository: Repository) -> Path:
    """A populated worktree of the repository on branch orchestra/t/w1-coder."""
    path = repository.worktrees_dir / "w1"
    worktrees.create_worktree(repository, path, "orchestra/t/w1-coder", repository.resolve("main"))
    worktrees.populate_worktree(path)
    return path


def test_create_worktree_checks_out_the_base_on_a_new_branch_outside_the_checkout(
        repository: Repository, repo: Path, isolated_home: Path) -> None:
    path = repository.worktrees_dir / "w1"
    worktrees.create_worktree(repository, path, "orchestra/t/w1-coder", repository.resolve("main"))
    assert not (path / "README.md").exists()  # created without a checkout: the supervisor populates it
    worktrees.populate_worktree(path)
    assert (path / "README.md").read_text() == "# demo\n"
    assert (path / "src" / "app.py").read_text() == "def answer():\n    return 41\n"
    assert git(path, "symbolic-ref", "--short", "HEAD") == "orchestra/t/w1-coder"
    assert git(path, "rev-parse", "HEAD") == git(repo, "rev-parse", "main")
    assert git(path, "status", "--porcelain") == ""
    assert path.resolve().is_relative_to(isolated_home / ".local/share/orchestra/worktrees")
    assert not path.resolve().is_relative_to(repo.resolve())
    assert str(path) in git(repo, "worktree", "list", "--porcelain")


def test_a_spawned_run_gets_a_populated_worktree_on_its_own_branch_under_the_data_dir(
        repo: Path, make_fleet: MakeFleet, isolated_home: Path) -> None:
    fleet = make_fleet(repo, score_text(
        {"coder": "ls src > listing.txt"}, [{"id": "tidy", "intent": "tidy up"}]))
    run = fleet.spawn("tidy")[0]
    assert run.branch == f"orchestra/tidy/{run.id}-coder"
    worktree = Path(run.worktree)
    assert worktree.resolve().is_relative_to(isolated_home / ".local/share/orchestra/worktrees")
    assert not worktree.resolve().is_relative_to(repo.resolve())
    run = wait_settled(fleet, run.id)
    assert run.state == "review", run.message
    assert git(worktree, "symbolic-ref", "--short", "HEAD") == run.branch
    # The agent ran in a populated checkout: it saw src/app.py.
    assert (worktree / "listing.txt").read_text() == "app.py\n"
    assert (worktree / "README.md").read_text() == "# demo\n"
    # The user's checkout is not touched by the run.
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_snapshot_commits_everything_but_junk_as_the_agent(worktree: Path) -> None:
    (worktree / "new.txt").write_text("new\n")
    (worktree / "src" / "app.py").write_text("def answer():\n    return 42\n")
    (worktree / "src" / "__pycache__").mkdir()
    (worktree / "src" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0junk")
    before = worktrees.head(worktree)

    commit = worktrees.snapshot(worktree, "coder", "coder: work")

    assert commit is not None and commit == worktrees.head(worktree) != before
    assert git(worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", commit) == f"{AGENT}|{AGENT}|coder: work"
    assert git(worktree, "rev-parse", f"{commit}^") == before
    assert set(git(worktree, "show", "--name-only", "--format=", commit).splitlines()) == {"new.txt", "src/app.py"}
    assert worktrees.snapshot(worktree, "coder", "nothing new") is None  # only junk is left


def test_snapshot_as_user_is_authored_by_the_configured_user(worktree: Path) -> None:
    (worktree / "edit.txt").write_text("by hand\n")
    commit = worktrees.snapshot(worktree, "coder", "edits", as_user=True)
    assert commit is not None
    assert git(worktree, "log", "-1", "--format=%an <%ae>", commit) == "Test Conductor <conductor@example.test>"


def test_working_tree_id_sees_every_file_but_leaves_the_index_alone(worktree: Path) -> None:
    assert worktrees.working_tree_id(worktree) == worktrees.tree_of(worktree)
    (worktree / "staged.txt").write_text("staged\n")
    git(worktree, "add", "staged.txt")
    (worktree / "unstaged.txt").write_text("unstaged\n")
    (worktree / "README.md").write_text("# changed\n")
    status = git(worktree, "status", "--porcelain", "--untracked-files=all")  # (git status may refresh the index)
    index = Path(git(worktree, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    index_bytes, index_mtime = index.read_bytes(), index.stat().st_mtime_ns

    tree = worktrees.working_tree_id(worktree)

    assert index.read_bytes() == index_bytes and index.stat().st_mtime_ns == index_mtime
    assert git(worktree, "status", "--porcelain", "--untracked-files=all") == status
    assert git(worktree, "diff", "--cached", "--name-only") == "staged.txt"
    assert tree != worktrees.tree_of(worktree)
    # It is exactly the tree a snapshot of the worktree as it is now records.
    worktrees.snapshot(worktree, "coder", "all of it")
    assert worktrees.tree_of(worktree) == tree


def test_diff_stat_counts_renames_once_and_binary_files_without_lines(worktree: Path) -> None:
    base = worktrees.head(worktree)
    (worktree / "src" / "app.py").rename(worktree / "src" / "main.py")
    (worktree / "logo.bin").write_bytes(bytes(range(256)) * 4)
    (worktree / "README.md").write_text("# demo, renamed\nsecond line\n")
    commit = worktrees.snapshot(worktree, "coder", "rename, binary, edit")
    assert commit

    stat = worktrees.diff_stat(worktree, base, commit)

    assert sorted(stat.paths) == ["README.md", "logo.bin", "src/main.py"]
    assert stat.files == 3
    assert (stat.added, stat.removed) == (2, 1)  # README: 2 lines in, 1 out; the rename and the binary: none
    assert "rename" in worktrees.unified_diff(worktree, base, commit)
    # Boundaries see both sides of the rename.
    assert sorted(worktrees.touched_paths(worktree, base, commit)) == [
        "README.md", "logo.bin", "src/app.py", "src/main.py"]


def test_remove_worktree_keeps_uncommitted_work_and_says_why(repository: Repository, worktree: Path) -> None:
    (worktree / "precious.txt").write_text("do not lose me\n")

    kept = worktrees.remove_worktree(repository, worktree)

    assert kept is not None and "uncommitted changes" in kept and str(worktree) in kept
    assert (worktree / "precious.txt").read_text() == "do not lose me\n"
    assert str(worktree) in git(repository.root, "worktree", "list", "--porcelain")


def test_remove_worktree_removes_a_committed_worktree_and_keeps_its_branch(
        repository: Repository, worktree: Path) -> None:
    (worktree / "work.txt").write_text("work\n")
    commit = worktrees.snapshot(worktree, "coder", "work")
    # Junk a snapshot never commits does not keep a worktree alive.
    (worktree / "__pycache__").mkdir()
    (worktree / "__pycache__" / "x.pyc").write_bytes(b"\0")

    assert worktrees.remove_worktree(repository, worktree) is None

    assert not worktree.exists()
    assert str(worktree) not in git(repository.root, "worktree", "list", "--porcelain")
    assert worktrees.branch_exists(repository, "orchestra/t/w1-coder")
    assert git(repository.root, "rev-parse", "orchestra/t/w1-coder") == commit
    assert git(repository.root, "show", "orchestra/t/w1-coder:work.txt") == "work"
    # Removing it again is harmless.
    assert worktrees.remove_worktree(repository, worktree) is None


def test_worktrees_of_two_repositories_with_the_same_name_do_not_collide(tmp_path: Path) -> None:
    roots = []
    for parent in ("one", "two"):
        root = tmp_path / parent / "project"
        root.mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")
        git(root, "commit", "-q", "--allow-empty", "-m", "init")
        roots.append(open_repository(root))
    assert roots[0].worktrees_dir != roots[1].worktrees_dir
    assert os.path.commonpath([roots[0].worktrees_dir, roots[1].worktrees_dir]).endswith("orchestra/worktrees")
