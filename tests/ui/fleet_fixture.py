"""A deterministic fleet for UI tests: real commits with fixed dates, run records written directly."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from orchestra.core.fleet.fleet import Fleet, agent_config
from orchestra.core.git.repo import open_repository
from orchestra.core.runs.run import Gate, Run
from orchestra.core.score import load_score

CLOCK = 1_800_000_000.0
FIXED_DATE = "2026-11-01T12:00:00+00:00"
SCORE = """\
[orchestra]
target = "main"

[[agents]]
name = "fixer"
kind = "shell"
command = "true"
role = "code"

[[agents]]
name = "tester"
kind = "shell"
command = "true"
role = "tests"

[[specs]]
id = "fix-mean"
intent = "Fix calc.mean so the failing test passes"
allow = ["calc/**", "tests/**"]
verify = ["pytest -q"]
agents = ["fixer", "tester"]
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "calc").mkdir()
    (root / "calc" / "stats.py").write_text("def mean(values):\n    return sum(values) / (len(values) - 1)\n")
    (root / "orchestra.toml").write_text(SCORE)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def commit_on_branch(root: Path, branch: str, files: dict[str, str]) -> str:
    git(root, "checkout", "-q", "-b", branch, "main")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"work on {branch}")
    commit = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "main")
    return commit


def gate(name: str, status: str, tree: str, kind: str = "command", **values) -> Gate:
    return Gate(name=name, kind=kind, status=status, tree=tree, **values)


def build_fleet(tmp_path: Path) -> Fleet:
    """A fleet with four runs: working, review (green), review (red, one stale gate), failed."""
    root = make_repo(tmp_path / "repo")
    repo = open_repository(root)
    score = load_score(repo.score_path)
    fleet = Fleet(repo, score)
    base = git(root, "rev-parse", "HEAD")
    spec = score.spec("fix-mean")
    fixed = commit_on_branch(root, "orchestra/fix-mean/r2-fixer",
                             {"calc/stats.py": "def mean(values):\n    return sum(values) / len(values)\n"})
    messy = commit_on_branch(root, "orchestra/fix-mean/r3-tester",
                             {"tests/test_median.py": "def test_median():\n    assert True\n",
                              "README.md": "# notes\n"})
    tree2, tree3 = git(root, "rev-parse", f"{fixed}^{{tree}}"), git(root, "rev-parse", f"{messy}^{{tree}}")
    records = [
        dict(id="r1", agent="fixer", state="working", started=CLOCK - 42, branch="orchestra/fix-mean/r1-fixer",
             candidate=None, tree=None, output=["reading calc/stats.py", "running the tests", "editing mean()"]),
        dict(id="r2", agent="fixer", state="review", started=CLOCK - 95, finished=CLOCK - 20, candidate=fixed,
             tree=tree2, files=(["calc/stats.py"], 1, 1), branch="orchestra/fix-mean/r2-fixer",
             gates=[gate("boundary", "passed", tree2, "boundary", summary="within bounds"),
                    gate("pytest", "passed", tree2, summary="4 passed", passed=4, failed=0),
                    gate("secrets", "passed", tree2, "secrets", summary="no secrets found")],
             output=["fixed mean()", "4 passed in 0.02s"]),
        dict(id="r3", agent="tester", state="review", started=CLOCK - 130, finished=CLOCK - 60, candidate=messy,
             tree=tree3, files=(["README.md", "tests/test_median.py"], 3, 0), branch="orchestra/fix-mean/r3-tester",
             gates=[gate("boundary", "failed", tree3, "boundary", summary="1 path(s) out of bounds",
                         failures=["README.md (outside allow)"]),
                    gate("pytest", "failed", "0" * 40, summary="1 failed, 4 passed", passed=4, failed=1,
                         failures=["tests/test_stats.py::test_mean"])],
             output=["added tests/test_median.py", "1 failed, 4 passed"]),
        dict(id="r4", agent="tester", state="failed", started=CLOCK - 30, finished=CLOCK - 25,
             branch="orchestra/fix-mean/r4-tester", candidate=base, tree=None,
             message="the agent exited with status 1", output=["error: model API unreachable"]),
    ]
    for record in records:
        write_run(fleet, record, base, spec)
    return fleet


def write_run(fleet: Fleet, r: dict, base: str, spec) -> None:
    paths, added, removed = r.get("files", ([], 0, 0))
    run = Run(id=r["id"], agent=r["agent"], spec="fix-mean", task=spec.intent, branch=r["branch"],
              worktree=str(fleet.repo.worktrees_dir / r["id"]), base=base, target="main",
              agent_config=agent_config(fleet.score.agent(r["agent"])), spec_config=spec.to_dict(),
              created=time.time(), state=r["state"], started=r["started"], finished=r.get("finished"),
              candidate=r["candidate"], tree=r["tree"], files_changed=len(paths), lines_added=added,
              lines_removed=removed, changed_paths=list(paths), message=r.get("message", ""),
              gates={g.name: g for g in r.get("gates", [])})
    fleet.store.run_dir(run.id).mkdir(parents=True, exist_ok=True)
    fleet.store.save(run)
    fleet.store.append_events(run.id, [{"type": "output", "text": line} for line in r["output"]])
