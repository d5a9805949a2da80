"""Worktree sandboxes on real repositories: create, snapshot, measure, remove — never losing work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestra.core.git import worktrees
from orchestra.core.git.actor import actor_identity
from orchestra.core.git.cleanup import remove_worktree
from orchestra.core.git.diffs import diff_stat, touched_paths, tree_of, unified_diff
from orchestra.core.git.repo import Repository, open_repository
from orchestra.core.git.snapshot import snapshot, working_tree_id
from orchestra.core.git.worktrees import RunTree, agent_identity
from orchestra.core.score import DEFAULT_DISPOSABLE
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import commit_vendored_library, score_text, wait_settled

AGENT = "coder (orchestra agent) <coder@agents.orchestra.invalid>"
CODER = agent_identity("coder")


@pytest.fixture
def repository(repo: Path) -> Repository:
    return open_repository(repo)


@pytest.fixture
def tree(repository: Repository) -> RunTree:
    """A populated worktree of the repository on branch orchestra/t/w1-coder."""
    made = worktrees.create_worktree(repository, repository.worktrees_dir / "w1", "orchestra/t/w1-coder",
                                     repository.resolve("main"))
    worktrees.populate_worktree(made)
    return made


@pytest.fixture
def worktree(tree: RunTree) -> Path:
    return tree.path


def head(path: Path) -> str:
    return git(path, "rev-parse", "HEAD")


def test_create_worktree_checks_out_the_base_on_a_new_branch_outside_the_checkout(
        repository: Repository, repo: Path, isolated_home: Path) -> None:
    path = repository.worktrees_dir / "w1"
    made = worktrees.create_worktree(repository, path, "orchestra/t/w1-coder", repository.resolve("main"))
    assert made.gitdir.parent == repository.common_dir / "worktrees" and made.problem() is None
    assert not (path / "README.md").exists()  # created without a checkout: the supervisor populates it
    worktrees.populate_worktree(made)
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
    assert run.branch == f"orchestra/tidy/{run.id}/coder"
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


def test_snapshot_commits_everything_but_junk_as_the_agent(tree: RunTree, worktree: Path) -> None:
    (worktree / "new.txt").write_text("new\n")
    (worktree / "src" / "app.py").write_text("def answer():\n    return 42\n")
    (worktree / "src" / "__pycache__").mkdir()
    (worktree / "src" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0junk")
    before = head(worktree)

    commit = snapshot(tree, CODER, "coder: work")

    assert commit is not None and commit == head(worktree) != before
    assert git(worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", commit) == f"{AGENT}|{AGENT}|coder: work"
    assert git(worktree, "rev-parse", f"{commit}^") == before
    assert set(git(worktree, "show", "--name-only", "--format=", commit).splitlines()) == {"new.txt", "src/app.py"}
    assert snapshot(tree, CODER, "nothing new") is None  # only junk is left
    assert git(worktree, "status", "--porcelain") == "?? src/__pycache__/"  # the index agrees with HEAD


def test_snapshot_commits_tracked_files_even_where_untracked_junk_is_left_out(
        repository: Repository, repo: Path) -> None:
    commit_vendored_library(repo)
    made = worktrees.create_worktree(repository, repository.worktrees_dir / "w2", "orchestra/t/w2-coder",
                                     repository.resolve("main"))
    worktrees.populate_worktree(made)
    (made.path / "node_modules" / "lib" / "index.js").write_text("module.exports = 2;\n")
    (made.path / "node_modules" / "lib" / "cache.js").write_text("untracked junk\n")

    commit = snapshot(made, CODER, "patch the vendored lib")

    assert commit is not None
    assert git(repo, "show", f"{commit}:node_modules/lib/index.js") == "module.exports = 2;"
    assert git(repo, "show", "--name-only", "--format=", commit).splitlines() == ["node_modules/lib/index.js"]


def test_snapshot_as_the_conductor_is_authored_by_the_configured_user(tree: RunTree, worktree: Path) -> None:
    (worktree / "edit.txt").write_text("by hand\n")
    commit = snapshot(tree, actor_identity("Test Conductor <conductor@example.test>"), "edits")
    assert commit is not None
    assert git(worktree, "log", "-1", "--format=%an <%ae>", commit) == "Test Conductor <conductor@example.test>"


def test_working_tree_id_sees_every_file_but_leaves_the_index_alone(tree: RunTree, worktree: Path) -> None:
    assert working_tree_id(tree) == tree_of(worktree, "HEAD")
    (worktree / "staged.txt").write_text("staged\n")
    git(worktree, "add", "staged.txt")
    (worktree / "unstaged.txt").write_text("unstaged\n")
    (worktree / "README.md").write_text("# changed\n")
    status = git(worktree, "status", "--porcelain", "--untracked-files=all")  # (git status may refresh the index)
    index = Path(git(worktree, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    index_bytes, index_mtime = index.read_bytes(), index.stat().st_mtime_ns

    now = working_tree_id(tree)

    assert index.read_bytes() == index_bytes and index.stat().st_mtime_ns == index_mtime
    assert git(worktree, "status", "--porcelain", "--untracked-files=all") == status
    assert git(worktree, "diff", "--cached", "--name-only") == "staged.txt"
    assert now != tree_of(worktree, "HEAD")
    # It is exactly the tree a snapshot of the worktree as it is now records.
    snapshot(tree, CODER, "all of it")
    assert tree_of(worktree, "HEAD") == now


def test_diff_stat_counts_renames_once_and_binary_files_without_lines(tree: RunTree, worktree: Path) -> None:
    base = head(worktree)
    (worktree / "src" / "app.py").rename(worktree / "src" / "main.py")
    (worktree / "logo.bin").write_bytes(bytes(range(256)) * 4)
    (worktree / "README.md").write_text("# demo, renamed\nsecond line\n")
    commit = snapshot(tree, CODER, "rename, binary, edit")
    assert commit

    stat = diff_stat(worktree, base, commit)

    assert sorted(stat.paths) == ["README.md", "logo.bin", "src/main.py"]
    assert stat.files == 3
    assert (stat.added, stat.removed) == (2, 1)  # README: 2 lines in, 1 out; the rename and the binary: none
    assert "rename" in unified_diff(worktree, base, commit)
    # Boundaries see both sides of the rename.
    assert sorted(touched_paths(worktree, base, commit)) == [
        "README.md", "logo.bin", "src/app.py", "src/main.py"]


def test_remove_worktree_keeps_uncommitted_work_and_says_why(repository: Repository, tree: RunTree,
                                                             worktree: Path) -> None:
    (worktree / "precious.txt").write_text("do not lose me\n")

    kept = remove_worktree(repository, tree, DEFAULT_DISPOSABLE)

    assert kept is not None and "uncommitted changes" in kept.describe() and str(worktree) in kept.describe()
    assert kept.paths == ("precious.txt",)
    assert (worktree / "precious.txt").read_text() == "do not lose me\n"
    assert str(worktree) in git(repository.root, "worktree", "list", "--porcelain")


def test_remove_worktree_removes_a_committed_worktree_and_keeps_its_branch(
        repository: Repository, tree: RunTree, worktree: Path) -> None:
    (worktree / "work.txt").write_text("work\n")
    commit = snapshot(tree, CODER, "work")
    # Junk a snapshot never commits does not keep a worktree alive.
    (worktree / "__pycache__").mkdir()
    (worktree / "__pycache__" / "x.pyc").write_bytes(b"\0")

    assert remove_worktree(repository, tree, DEFAULT_DISPOSABLE) is None

    assert not worktree.exists()
    assert str(worktree) not in git(repository.root, "worktree", "list", "--porcelain")
    assert worktrees.branch_exists(repository, "orchestra/t/w1-coder")
    assert git(repository.root, "rev-parse", "orchestra/t/w1-coder") == commit
    assert git(repository.root, "show", "orchestra/t/w1-coder:work.txt") == "work"
    # Removing it again is harmless.
    assert remove_worktree(repository, tree, DEFAULT_DISPOSABLE) is None


def test_remove_worktree_keeps_ignored_files_unless_they_are_disposable(
        repository: Repository, repo: Path) -> None:
    (repo / ".gitignore").write_text("out/\nnode_modules/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore build output")
    made = worktrees.create_worktree(repository, repository.worktrees_dir / "w3", "orchestra/t/w3-coder",
                                     repository.resolve("main"))
    worktrees.populate_worktree(made)
    (made.path / "node_modules" / "dep").mkdir(parents=True)
    (made.path / "node_modules" / "dep" / "index.js").write_text("disposable\n")
    (made.path / "out").mkdir()
    (made.path / "out" / "result.txt").write_text("the agent's only copy\n")

    kept = remove_worktree(repository, made, DEFAULT_DISPOSABLE)

    assert kept is not None and kept.paths == ("out/",) and "not disposable" in kept.reason
    assert (made.path / "out" / "result.txt").read_text() == "the agent's only copy\n"
    # Once the only non-disposable file is gone, the worktree goes, node_modules with it.
    (made.path / "out" / "result.txt").unlink()
    assert remove_worktree(repository, made, DEFAULT_DISPOSABLE) is None and not made.path.exists()


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
