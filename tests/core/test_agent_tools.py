"""The built-in agent's tools: what they do in a worktree and what they refuse."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestra.core.agents.tools import TOOL_SPECS, Toolbox, ToolError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "calc").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "calc" / "stats.py").write_text("def mean(v):\n    return sum(v) / (len(v) - 1)\n")
    (root / "README.md").write_text("# demo\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    return root


def box(root: Path, **kw) -> Toolbox:
    return Toolbox(root, **kw)


def test_reading_tools(tree: Path) -> None:
    (tree / "calc" / ".git").write_text("gitdir: /elsewhere\n")  # as in a nested worktree
    tools = box(tree)
    assert tools.list_files() == "README.md\ncalc/stats.py"  # .git is never listed
    assert tools.list_files("calc", "*.py") == "calc/stats.py"
    text = tools.read_file("calc/stats.py", 2, 2)
    assert text == "calc/stats.py lines 2-2 of 2:\n    2      return sum(v) / (len(v) - 1)"
    assert tools.search(r"len\(v\)") == "calc/stats.py:2:     return sum(v) / (len(v) - 1)"
    assert tools.search("nothing here") == "no match for 'nothing here'"


def test_writing_tools(tree: Path) -> None:
    tools = box(tree, allow=("calc/**", "tests/**"))
    assert tools.edit_file("calc/stats.py", "(len(v) - 1)", "len(v)") == \
        "edited calc/stats.py: replaced 1 line(s) with 1"
    assert (tree / "calc" / "stats.py").read_text().endswith("return sum(v) / len(v)\n")
    assert tools.write_file("tests/test_stats.py", "def test():\n    pass\n") == "created tests/test_stats.py (2 lines)"
    with pytest.raises(ToolError, match="not found"):
        tools.edit_file("calc/stats.py", "no such text", "x")
    (tree / "calc" / "twice.py").write_text("a\na\n")
    with pytest.raises(ToolError, match="found 2 times"):
        tools.edit_file("calc/twice.py", "a", "b")


@pytest.mark.parametrize(("path", "why"), [
    ("/etc/passwd", "absolute paths are not allowed"),
    ("~/.bashrc", "absolute paths are not allowed"),
    ("../outside.txt", "outside the worktree"),
    ("calc/../../outside.txt", "outside the worktree"),
    (".git/config", "inside .git"),
    ("calc/../.git/hooks/pre-commit", "inside .git"),
    ("link-out/outside.txt", "leads outside the worktree"),
])
def test_paths_outside_the_worktree_are_refused_for_reading_and_writing(tree: Path, path: str, why: str) -> None:
    os.symlink(tree.parent, tree / "link-out")
    tools = box(tree)
    with pytest.raises(ToolError, match=why):
        tools.read_file(path)
    with pytest.raises(ToolError, match=why):
        tools.write_file(path, "x")
    assert (tree.parent / "outside.txt").read_text() == "secret\n"


def test_writes_obey_allow_and_deny(tree: Path) -> None:
    tools = box(tree, allow=("calc/**",), deny=("calc/vendor/**",))
    with pytest.raises(ToolError, match=r"README.md: outside the spec's allowed paths \(calc/\*\*\)"):
        tools.write_file("README.md", "changed")
    with pytest.raises(ToolError, match="inside the spec's denied paths"):
        tools.write_file("calc/vendor/lib.py", "x")
    assert tools.read_file("README.md").endswith("# demo")  # reading outside allow is fine
    os.symlink("../README.md", tree / "calc" / "readme-link")  # inside allow, but it writes README.md
    with pytest.raises(ToolError, match="outside the spec's allowed paths"):
        tools.write_file("calc/readme-link", "changed")
    assert (tree / "README.md").read_text() == "# demo\n"


def test_run_command(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONLY", "this")  # commands inherit the tool runner's environment (the jail's)
    tools = box(tree, command_timeout=5)
    result = tools.run_command("echo $ONLY; pwd; exit 3")
    assert result == f"exit status 3\nthis\n{os.path.realpath(tree)}\n"
    started = time.monotonic()
    result = tools.run_command("sleep 30 & sleep 30", timeout=0.5)
    assert result.startswith("timed out after 0.5s (killed)") and time.monotonic() - started < 5
    big = tools.run_command("seq 1 100000")
    assert "characters left out" in big and big.rstrip().endswith("100000") and len(big) < 13_000


def test_call_dispatches_and_explains_mistakes(tree: Path) -> None:
    tools = box(tree)
    assert tools.call("read_file", {"path": "README.md"}).endswith("# demo")
    with pytest.raises(ToolError, match="unknown tool 'delete'"):
        tools.call("delete", {})
    with pytest.raises(ToolError, match="bad arguments for read_file"):
        tools.call("read_file", {"file": "README.md"})
    assert {spec["function"]["name"] for spec in TOOL_SPECS} == \
        {"list_files", "read_file", "search", "write_file", "edit_file", "run_command"}


def test_repository_instructions_stay_inside_the_worktree(tree: Path) -> None:
    (tree / "AGENTS.md").write_text("Keep functions tiny.\n")
    (tree.parent / "secret.txt").write_text("PRIVATE KEY\n")
    os.symlink(tree.parent / "secret.txt", tree / "CLAUDE.md")  # a committed link must not read the home
    assert box(tree).repository_instructions() == "--- AGENTS.md ---\nKeep functions tiny."
    (tree / "AGENTS.md").write_text("x" * 20_000)
    assert box(tree).repository_instructions().endswith("\n… (cut)")


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="the kernel has no autogroup scheduling")
def test_a_models_commands_run_below_the_ui_in_priority(tree: Path) -> None:
    """Each command leads a session of its own (so a timeout ends it whole): its autogroup is niced, or it
    competes with the conductor's UI as an equal."""
    from orchestra.core.base.procs import FLEET_NICENESS
    result = box(tree).run_command("cat /proc/self/autogroup")
    assert f"nice {FLEET_NICENESS}\n" in result + "\n", result
