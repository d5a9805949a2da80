"""Symlinks that lead outside the repository: found in a change by git, and failing the boundary gate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestra.core.gates.verifier import boundary_gate
from orchestra.core.git.links import UNREADABLE, leads_outside, symlinks_leaving
from orchestra.core.runs.run import Run
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_settled


def commit_links(repo: Path, links: dict[str, str | bytes]) -> tuple[str, str]:
    """Commit symlinks (path -> target) on top of HEAD; return (base, new commit)."""
    base = git(repo, "rev-parse", "HEAD")
    for path, target in links.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, os.fsencode(repo / path) if isinstance(target, bytes) else repo / path)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "links")
    return base, git(repo, "rev-parse", "HEAD")


def test_links_that_leave_are_reported_with_their_targets(repo: Path) -> None:
    base, head = commit_links(repo, {
        "src/leak": "/etc/passwd",
        "src/up": "../../outside",
        "src/deep/er/up": "../../../../x",
        "src/sibling": "../README.md",
        "src/deep/er/fine": "../../../README.md",
        "src/self": ".",
        "src/café": "./naïve/../../../é",
        "docs/dir": "../src/deep/../deep",
    })
    assert sorted(symlinks_leaving(repo, base, head)) == [
        ("src/café", "./naïve/../../../é"),
        ("src/deep/er/up", "../../../../x"),
        ("src/leak", "/etc/passwd"),
        ("src/up", "../../outside"),
    ]


def test_a_link_changed_to_leave_or_a_file_replaced_by_one_is_reported(repo: Path) -> None:
    base, _ = commit_links(repo, {"src/link": "app.py"})
    (repo / "src" / "link").unlink()
    os.symlink("/tmp", repo / "src" / "link")
    (repo / "README.md").unlink()
    os.symlink("../README.md", repo / "README.md")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "retarget")
    assert sorted(symlinks_leaving(repo, base, "HEAD")) == [("README.md", "../README.md"), ("src/link", "/tmp")]


def test_no_links_no_git_for_contents_and_trees_work_as_revisions(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "plain.txt").write_text("../../etc\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plain")
    assert symlinks_leaving(repo, base, "HEAD") == []
    _, head = commit_links(repo, {"a": "/"})
    assert symlinks_leaving(repo, base, git(repo, "rev-parse", f"{head}^{{tree}}")) == [("a", "/")]
    assert symlinks_leaving(repo, head, base) == []  # deleting a link is fine


def test_a_target_that_is_not_utf8_is_unreadable_and_the_others_still_read(repo: Path) -> None:
    base, head = commit_links(repo, {"a-bad": b"\xff/../../x", "b-leak": "/etc", "c-fine": "src"})
    assert symlinks_leaving(repo, base, head) == [("a-bad", UNREADABLE), ("b-leak", "/etc")]


@pytest.mark.parametrize(("path", "target", "leaves"), [
    ("a", "/abs", True), ("a", "..", True), ("a", "b/../..", True), ("d/a", "..", False),
    ("d/a", "../..", True), ("d/a", "./../x/./", False), ("a", "", False), ("d/e/a", "../../x", False),
])
def test_leads_outside_resolves_relative_to_the_link(path: str, target: str, leaves: bool) -> None:
    assert leads_outside(path, target) is leaves


def test_the_boundary_gate_fails_on_leaving_links_and_lists_them() -> None:
    run = Run(id="r", agent="a", spec="s", task="t", branch="b", worktree="w", base="base", target="main",
              agent_config={}, spec_config={"allow": ["src/**"]})
    gate = boundary_gate(run, "tree", ["src/leak"], [("src/leak", "/etc/passwd"), ("src/x", "\x1b[2J")])
    assert gate.status == "failed"
    assert gate.failures == ["src/leak -> /etc/passwd (symlink leads outside the repository)",
                             "src/x -> '\\x1b[2J' (symlink leads outside the repository)"]
    assert gate.summary == "2 path(s) out of bounds"
    assert boundary_gate(run, "tree", ["src/ok"], []).status == "passed"


def test_an_agent_linking_out_of_the_repository_fails_the_boundary_gate(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text(
        {"coder": "ln -s /etc/passwd src/leak && ln -s ../README.md src/readme && echo x > src/x.py"},
        [{"id": "work", "intent": "x", "allow": ["src/**"]}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.state == "review"
    gate = run.gates["boundary"]
    assert gate.status == "failed" and gate.tree == run.tree
    assert gate.failures == ["src/leak -> /etc/passwd (symlink leads outside the repository)"]
    assert gate.summary == "1 path(s) out of bounds"
