"""Worktrees set up like the developer's own checkout: .worktreeinclude copies, setup commands in the
run's jail, trust in them asked of the conductor and kept outside the repository, a block of ports per
live run, and gates that import the worktree's Python code (and say when they did not)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from orchestra.core.fleet.trust import UntrustedSetup, commands_hash, trust_path
from orchestra.core.jail import probe
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, notes, output_lines, score_text, toml_value, wait_settled, wait_state


def setup_score(agents: dict, specs: list[dict], setup: list[str] | None = None, read: list[str] | None = None) -> str:
    head = f"[orchestra]\nsetup = {toml_value(setup)}\n\n" if setup else ""
    if read:
        head += f"[sandbox]\nread = {toml_value(read)}\n\n"
    return head + score_text(agents, specs)


def test_include_copies_exactly_the_ignored_files_it_names(repo: Path, make_fleet: MakeFleet) -> None:
    (repo / ".gitignore").write_text(".env\nlocal/\n*.log\n")
    (repo / ".worktreeinclude").write_text("# local settings\n/.env\nlocal/settings.json\nnotes.txt\nREADME.md\n")
    git(repo, "add", ".gitignore", ".worktreeinclude")
    git(repo, "commit", "-q", "-m", "include rules")
    (repo / ".env").write_text("TOKEN=local\n")
    os.chmod(repo / ".env", 0o640)
    (repo / "local").mkdir()
    (repo / "local" / "settings.json").write_text("{}\n")
    (repo / "local" / "other.json").write_text("{}\n")   # ignored, but named only by an uncommitted rule
    (repo / "notes.txt").write_text("mine\n")            # named, but not ignored: work in progress
    (repo / "debug.log").write_text("noise\n")           # ignored, not named
    fleet = make_fleet(repo, score_text({"reader": "cat .env local/settings.json"}, [{"id": "work", "intent": "x"}]))
    (repo / ".worktreeinclude").write_text("/.env\nlocal/\n")  # an uncommitted widening is not obeyed

    run = wait_settled(fleet, fleet.spawn("work")[0].id)

    worktree = Path(run.worktree)
    assert run.state == "review", run.message
    assert "TOKEN=local" in output_lines(fleet, run.id)
    assert "copied from your checkout (.worktreeinclude): .env, local/settings.json" in notes(fleet, run.id)
    copied = worktree / ".env"
    assert not copied.is_symlink() and stat.S_IMODE(copied.stat().st_mode) == 0o640
    assert (worktree / "local" / "settings.json").read_text() == "{}\n"
    for absent in ("local/other.json", "notes.txt", "debug.log"):
        assert not (worktree / absent).exists(), absent
    assert ".env" not in run.changed_paths  # copies are never committed onto the run's branch
    # Unchanged copies are the checkout's files: a decision removes the worktree all the same.
    rejected = fleet.reject(run.id, "done")
    assert rejected.kept is None and not worktree.exists()
    assert (repo / ".env").read_text() == "TOKEN=local\n"


def test_setup_runs_in_the_jail_before_the_agent_and_not_again_on_a_redirect(
        repo: Path, make_fleet: MakeFleet) -> None:
    setup = ["echo setting-up && echo \"home=$HOME port=$ORCHESTRA_PORT\" > setup.txt",
             f"test -e {repo}/README.md && echo saw-checkout || echo no-checkout"]
    spec = {"id": "work", "intent": "x", "setup": ["test -f setup.txt && echo spec-setup >> setup.txt"]}
    fleet = make_fleet(repo, setup_score({"worker": "cat setup.txt"}, [spec], setup))

    run = wait_settled(fleet, fleet.spawn("work", trust=True)[0].id)

    assert run.state == "review", run.message
    said = output_lines(fleet, run.id)
    home = fleet.repo.jails_dir / run.id / "home"
    assert said.index("setting-up") < said.index(f"home={home} port={run.port}") < said.index("spec-setup")
    if probe().works:
        assert "no-checkout" in said  # the sandbox hides the checkout from setup too
    assert run.setup == [*setup, *spec["setup"]]
    assert [n for n in notes(fleet, run.id) if n.startswith("setup: ")] == [f"setup: {c}" for c in run.setup]

    fleet.redirect(run.id, "once more")
    again = wait_settled(fleet, run.id)
    assert again.state == "review" and len([n for n in notes(fleet, run.id) if n.startswith("setup: ")]) == 3


def test_a_failing_setup_fails_the_run_with_its_output_and_runs_again_on_a_redirect(
        repo: Path, make_fleet: MakeFleet) -> None:
    setup = ["test -f ok.flag || { echo 'ok.flag is missing'; exit 7; }"]
    fleet = make_fleet(repo, setup_score({"worker": "echo AGENT RAN"}, [{"id": "work", "intent": "x"}], setup))

    run = wait_state(fleet, fleet.spawn("work", trust=True)[0].id, "failed")

    assert run.message == f"setup command `{setup[0]}` failed with exit status 7: ok.flag is missing"
    said = output_lines(fleet, run.id)
    assert "ok.flag is missing" in said and "AGENT RAN" not in said
    (Path(run.worktree) / "ok.flag").write_text("")
    fleet.redirect(run.id, "try again")
    again = wait_settled(fleet, run.id)
    assert again.state == "review", again.message
    assert "AGENT RAN" in output_lines(fleet, run.id)
    assert notes(fleet, run.id).count(f"setup: {setup[0]}") == 2


def test_untrusted_setup_refuses_spawn_and_trust_is_kept_outside_the_repository(
        repo: Path, make_fleet: MakeFleet, isolated_home: Path) -> None:
    setup = ["echo prepared"]
    fleet = make_fleet(repo, setup_score({"worker": "true"}, [{"id": "work", "intent": "x"}], setup))

    refused = cli("-C", str(repo), "spawn", "work")
    assert refused.returncode == 3, refused.stderr
    assert "  echo prepared" in refused.stderr and "run again with --trust to allow them" in refused.stderr
    assert fleet.store.list() == []

    allowed = cli("-C", str(repo), "spawn", "work", "--trust")
    assert allowed.returncode == 0, allowed.stderr
    record = json.loads(trust_path().read_text())
    assert commands_hash(setup) in record["repositories"][str(repo.resolve())]
    assert isolated_home in trust_path().parents and repo not in trust_path().parents
    assert git(repo, "status", "--porcelain") == ""
    assert cli("-C", str(repo), "spawn", "work").returncode == 0  # remembered

    fleet = make_fleet(repo, setup_score({"worker": "true"}, [{"id": "work", "intent": "x"}],
                                         ["echo prepared", "echo and more"]))
    again = cli("-C", str(repo), "spawn", "work")
    assert again.returncode == 3 and "changed since you last allowed them" in again.stderr
    assert "  echo and more" in again.stderr
    try:
        fleet.spawn("work")
    except UntrustedSetup as error:
        assert error.commands == ("echo prepared", "echo and more")
    else:
        raise AssertionError("a changed setup was not asked about")
    for run in fleet.store.list():
        wait_settled(fleet, run.id)


def test_live_runs_get_their_own_ports_and_a_decided_runs_block_is_reused(repo: Path, make_fleet: MakeFleet) -> None:
    spec = {"id": "work", "intent": "x", "agents": ["one", "two"],
            "verify": [{"name": "port", "command": "test \"$ORCHESTRA_PORT\" -ge 20000"}]}
    fleet = make_fleet(repo, score_text({"one": "echo port=$ORCHESTRA_PORT", "two": "echo port=$ORCHESTRA_PORT"},
                                        [spec]))

    first, second = (wait_settled(fleet, run.id) for run in fleet.spawn("work"))

    assert first.port != second.port and {first.port % 10, second.port % 10} == {0}
    assert all(20000 <= run.port <= 29990 for run in (first, second))
    for run in (first, second):
        assert f"port={run.port}" in output_lines(fleet, run.id)
        assert run.gates["port"].status == "passed"
    fleet.reject(first.id, "free its ports")
    third = fleet.spawn("work", ["one"])[0]
    assert third.port == first.port
    wait_settled(fleet, third.id)


CHECK = """\
import app
print("answer", app.answer(), app.__file__)
import only_here
print("only_here", only_here.__file__)
"""


def test_gates_import_the_worktrees_code_and_flag_imports_from_the_checkout(
        repo: Path, make_fleet: MakeFleet, tmp_path: Path) -> None:
    (repo / "check_imports.py").write_text(CHECK)
    git(repo, "add", "check_imports.py")
    git(repo, "commit", "-q", "-m", "an import check")
    # An editable install of the checkout's package in the user's virtualenv, and a module only the
    # checkout has (uncommitted): the tests of a worktree would quietly use both.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "__editable__.app.pth").write_text(f"{repo / 'src'}\n")
    (repo / "src" / "only_here.py").write_text("")
    python = venv / "bin" / "python"
    spec = {"id": "work", "intent": "x",
            "verify": [{"name": "mixed", "command": f"{python} check_imports.py"},
                       {"name": "own", "command": f"{python} -c 'import app; assert app.answer() == 42'"}]}
    fleet = make_fleet(repo, setup_score({"fixer": "sed -i s/41/42/ src/app.py"}, [spec],
                                         read=[str(venv), str(repo)]))

    run = wait_settled(fleet, fleet.spawn("work")[0].id)

    mixed, own = run.gates["mixed"], run.gates["own"]
    assert own.status == "passed" and own.warnings == [], own.output_tail
    assert f"answer 42 {Path(run.worktree) / 'src' / 'app.py'}" in mixed.output_tail
    assert mixed.status == "passed" and len(mixed.warnings) == 1, (mixed.output_tail, mixed.warnings)
    assert f"only_here ({repo / 'src' / 'only_here.py'})" in mixed.warnings[0]
    assert "imported code from outside its worktree" in mixed.summary
    shown = json.loads(cli("-C", str(repo), "runs", "--json").stdout)[0]
    assert [g["warnings"] for g in shown["gates"] if g["name"] == "mixed"] == [mixed.warnings]


def test_a_failing_project_sitecustomize_never_breaks_a_gate(
        repo: Path, make_fleet: MakeFleet) -> None:
    spec = {"id": "work", "intent": "x",
            "verify": [{"name": "py", "command": f"{sys.executable} -c 'print(42)'"}]}
    (repo / "sitecustomize.py").write_text("raise RuntimeError('a project sitecustomize that fails')\n")
    git(repo, "add", "sitecustomize.py")
    git(repo, "commit", "-q", "-m", "a broken sitecustomize")
    fleet = make_fleet(repo, score_text({"noop": "true"}, [spec]))

    run = wait_settled(fleet, fleet.spawn("work")[0].id)

    gate = run.gates["py"]
    assert gate.status == "passed" and "42" in gate.output_tail and gate.warnings == [], gate.output_tail
