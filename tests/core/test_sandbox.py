"""A hostile agent in the real sandbox: every attempt on what is not its own is refused or contained,
and its own work still becomes a commit. (bubblewrap is installed by ./dev test; these tests need it.)"""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import pytest

from orchestra.core.jail import probe
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import output_lines, processes_with, score_text, wait_for, wait_settled

pytestmark = pytest.mark.skipif(not probe().works, reason="needs bubblewrap: ./dev test installs it")

SECRET = "sk-test-this-must-never-be-seen-0123456789"


def attack(repo: Path, victim: Path, marker: str) -> str:
    """A shell agent that tries everything it should not, reporting each outcome on stdout."""
    common = repo / ".git"
    tries = {
        "checkout": f"echo pwned >> {repo}/README.md",
        "hooks": f"printf '#!/bin/sh\\necho pwned\\n' > {common}/hooks/pre-commit",
        "config": f"git config --file {common}/config core.hooksPath /tmp/evil",
        "main-ref": "git update-ref refs/heads/main HEAD",
        "ledger": f"echo forged >> {common}/orchestra/ledger.jsonl",
        "other-worktree": f"echo pwned > {victim}/pwned.txt",
        "bashrc": "echo pwned >> ~/.bashrc && test -f ~/.bashrc && grep -q original ~/.bashrc",
        "ssh": "cat ~/.ssh/id_ed25519",
        "own-git-file": "echo 'gitdir: /tmp' > .git",
    }
    lines = [f"if ({command}) >/dev/null 2>&1; then echo 'DID {name}'; else echo 'REFUSED {name}'; fi"
             for name, command in tries.items()]
    lines += [
        "env | grep -q OPENAI_API_KEY && echo 'SAW key' || echo 'NO key'",
        f"setsid sh -c 'sleep {marker}1' >/dev/null 2>&1 < /dev/null &",
        f"(sh -c 'sleep {marker}2 &' &)",
        "echo mine > own.txt && git add own.txt && git commit -q -m 'the agent commits its own work' && echo COMMITTED",
    ]
    return "\n".join(lines)


def test_a_hostile_agent_is_contained_and_its_own_commit_still_works(
        repo: Path, make_fleet: MakeFleet, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    (isolated_home / ".ssh").mkdir()
    (isolated_home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (isolated_home / ".bashrc").write_text("original\n")
    victim_fleet = make_fleet(repo, score_text({"victim": "echo mine > victim.txt"},
                                               [{"id": "work", "intent": "work"}]))
    victim = wait_settled(victim_fleet, victim_fleet.spawn("work")[0].id)
    marker = f"30{uuid.uuid4().int % 10**5:05d}"
    fleet = make_fleet(repo, score_text({"hostile": attack(repo, Path(victim.worktree), marker)},
                                        [{"id": "work", "intent": "misbehave"}]))
    main, config = git(repo, "rev-parse", "main"), (repo / ".git" / "config").read_text()
    ledger = fleet.ledger.path.read_bytes() if fleet.ledger.path.exists() else None

    run = wait_settled(fleet, fleet.spawn("work")[0].id)

    said = output_lines(fleet, run.id)
    assert run.sandbox == {"sandboxed": True, "network": True, "why_not": None}
    # Refused outright (the rest, writes to the checkout and the config, land in the sandbox's own
    # throwaway copies: what matters is below, that nothing outside changed).
    for refused in ("hooks", "main-ref", "ledger", "other-worktree", "ssh", "own-git-file"):
        assert f"REFUSED {refused}" in said, said
    assert "NO key" in said and "COMMITTED" in said, said
    assert (repo / "README.md").read_text() == "# demo\n"
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert (repo / ".git" / "config").read_text() == config and git(repo, "rev-parse", "main") == main
    assert (fleet.ledger.path.read_bytes() if fleet.ledger.path.exists() else None) == ledger
    assert not (Path(victim.worktree) / "pwned.txt").exists()
    assert (isolated_home / ".bashrc").read_text() == "original\n"
    assert (Path(run.worktree) / ".git").read_text().strip() == f"gitdir: {run.gitdir}"
    # The daemon and the double fork went with the agent.
    assert not processes_with(f"sleep {marker}1") and not processes_with(f"sleep {marker}2")
    # Its own commit is on its branch (its object adopted into the repository), then its work.
    assert "the agent commits its own work" in git(repo, "log", "--format=%s", run.candidate)
    assert git(repo, "show", f"{run.candidate}:own.txt") == "mine"
    assert git(repo, "fsck", "--no-dangling") == ""
    files = [p for p in fleet.repo.state_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if SECRET in p.read_text(errors="replace")]


class Listener:
    """A TCP server on the host's loopback that counts connections."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()


@pytest.mark.parametrize("network", ["on", "off"])
def test_network_off_means_no_network_for_the_agent(repo: Path, make_fleet: MakeFleet, network: str) -> None:
    listener = Listener()
    try:
        probe_command = (f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {listener.port}), 3)\" "
                         "&& echo CONNECTED || echo NO-NETWORK")
        fleet = make_fleet(repo, score_text({"net": {"command": probe_command, "network": network}},
                                            [{"id": "work", "intent": "call out"}]))
        run = wait_settled(fleet, fleet.spawn("work")[0].id)
        said = output_lines(fleet, run.id)
        assert run.sandbox["network"] is (network == "on")
        assert ("CONNECTED" in said) is (network == "on") and listener.accepted == (1 if network == "on" else 0), said
    finally:
        listener.server.close()


def test_gates_run_in_the_jail_too(repo: Path, make_fleet: MakeFleet, isolated_home: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    (isolated_home / ".bashrc").write_text("original\n")
    fleet = make_fleet(repo, score_text({"quiet": "echo ok > ok.txt"}, [{"id": "work", "intent": "x", "verify": [
        {"name": "escape", "command": f"echo pwned >> {repo}/README.md; echo pwned >> ~/.bashrc; env > env.txt"}]}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert (repo / "README.md").read_text() == "# demo\n" and (isolated_home / ".bashrc").read_text() == "original\n"
    seen = dict(line.split("=", 1) for line in (Path(run.worktree) / "env.txt").read_text().splitlines() if "=" in line)
    assert SECRET not in str(seen) and "OPENAI_API_KEY" not in seen
    assert seen["HOME"] == str(fleet.repo.jails_dir / run.id / "home")


def test_a_score_that_requires_a_sandbox_refuses_where_there_is_none(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestra.core import jail as jail_module
    from orchestra.core.fleet import fleet as fleet_module
    from orchestra.core.jail import JailRefused, SandboxStatus
    fleet = make_fleet(repo, score_text({"a": "true"}, [{"id": "work", "intent": "x"}], sandbox="required"))
    broken = SandboxStatus(False, "bubblewrap is not installed (apt install bubblewrap)")
    monkeypatch.setattr(fleet_module, "probe", lambda: broken)
    monkeypatch.setattr(jail_module, "probe", lambda: broken)
    with pytest.raises(JailRefused, match="requires a sandbox.*not installed.*Nothing was started"):
        fleet.spawn("work")
    assert fleet.runs() == [] and git(repo, "branch", "--list", "orchestra/*") == ""


def test_without_a_sandbox_a_run_says_so(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"a": "echo x > x.txt"}, [{"id": "work", "intent": "x"}], sandbox="off"))
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.sandbox == {"sandboxed": False, "network": True, "why_not": "the score turns the sandbox off"}
    wait_for(lambda: any("not sandboxed" in e.get("text", "") for e in fleet.store.read_events(run.id)[0]),
             timeout=5, message="the run to say it is not sandboxed")
    fleet.accept(run.id, force=True)
    assert fleet.ledger.entries()[-1]["sandbox"]["sandboxed"] is False
