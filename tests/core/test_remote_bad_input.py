"""What a host refuses (`orchestra remote …`, run there by a relay) and what a spawn refuses about hosts: each a
clear message, nothing made or started. These need no ssh: the host side runs here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestra.core.base.errors import BadUsage
from orchestra.core.score import parse_score
from orchestra.core.score import ConfigError
from tests.core.helpers import score_text

SRC = str(Path(__file__).resolve().parents[2] / "src")


def remote(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestra.cli", "remote", *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_a_repository_key_that_could_leave_the_directory_is_refused(tmp_path: Path) -> None:
    done = remote("prepare", "--path", str(tmp_path), "--repo", "../escape")
    assert done.returncode == 2 and "'../escape' is not a repository's key" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_relative_directory_is_refused(tmp_path: Path) -> None:
    done = remote("prepare", "--path", "relative/dir", "--repo", "k")
    assert done.returncode == 2 and "'relative/dir' is not an absolute directory" in done.stderr


def test_an_order_that_is_not_json_or_names_no_run_is_refused(tmp_path: Path) -> None:
    assert json.loads(remote("prepare", "--path", str(tmp_path), "--repo", "k").stdout)["mirror"] == str(
        tmp_path / "repos" / "k")
    not_json = remote("start", "r1", "--path", str(tmp_path), "--repo", "k", stdin="{not json")
    assert not_json.returncode == 2 and "the order on stdin is not JSON" in not_json.stderr
    no_run = remote("start", "r1", "--path", str(tmp_path), "--repo", "k", stdin='{"run": {"id": "../r1"}}')
    assert no_run.returncode == 2 and "the order names no run" in no_run.stderr
    unpushed = remote("start", "r1", "--path", str(tmp_path), "--repo", "k",
                      stdin=json.dumps({"run": {"id": "r1", "base": "0" * 40, "branch": "b"}}))
    assert unpushed.returncode == 1 and "was not pushed here" in unpushed.stderr
    assert not (tmp_path / "repos" / "k" / ".git" / "orchestra" / "runs" / "r1" / "run.json").exists()


def test_following_a_run_the_host_does_not_have_says_so(tmp_path: Path) -> None:
    remote("prepare", "--path", str(tmp_path), "--repo", "k")
    done = remote("follow", "r7", "--path", str(tmp_path), "--repo", "k")
    assert done.returncode == 1 and "there is no run r7 here" in done.stderr


def test_an_agents_host_must_be_a_hosts_name() -> None:
    with pytest.raises(ConfigError, match="host 'Box One' is not a host's name"):
        parse_score(score_text({"coder": {"command": "true", "host": "Box One"}}), Path("orchestra.toml"))


def test_an_agents_host_missing_from_the_settings_is_refused_at_spawn(make_fleet, repo: Path) -> None:
    fleet = make_fleet(repo, score_text({"coder": {"command": "true", "host": "gpu"}},
                                        [{"id": "work", "intent": "x"}]))
    with pytest.raises(BadUsage, match="agent coder's host is 'gpu', which is not one of your hosts \\(local\\)"):
        fleet.spawn("work")
    assert fleet.store.list() == []


def test_every_ssh_orchestra_runs_forwards_nothing_and_never_asks_for_a_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex
    from orchestra.core.hosts import Host, probe_argv
    from orchestra.core.supervise.ssh import Place, git_ssh_command, ssh_argv
    monkeypatch.setenv("ORCHESTRA_SSH_CONFIG", "/etc/orchestra-test-ssh-config")
    place = Place("box", "dev@box.example")
    for argv in (ssh_argv(place, "true"), ssh_argv(place, "true", tty=True), shlex.split(git_ssh_command()),
                 probe_argv(Host("box", "dev@box.example"))):
        options = {argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-o"}
        assert {"ForwardAgent=no", "ForwardX11=no", "ClearAllForwardings=yes", "BatchMode=yes"} <= options, argv
        assert "-a" in argv and "-x" in argv and "-A" not in argv and "-X" not in argv
        assert argv[argv.index("-F") + 1] == "/etc/orchestra-test-ssh-config"  # the user's config when named
    assert ssh_argv(place, "true")[-3:] == ["--", "dev@box.example", "true"]  # a destination is never an option


def test_a_start_sent_twice_starts_one_supervisor_at_the_host(make_fleet, repo: Path, tmp_path: Path) -> None:
    from orchestra.core.fleet import hosted
    from orchestra.core.fleet.fleet import agent_config
    from orchestra.core.runs.run import Run
    from orchestra.core.supervise.processes import supervisors_of
    from orchestra.core.supervise.relay import order_of
    from tests.conftest import git
    fleet = make_fleet(repo, score_text({"sleeper": "sleep 30"}, [{"id": "work", "intent": "x"}]))
    base = git(repo, "rev-parse", "HEAD")
    at_host = hosted.host_repository(str(tmp_path / "host"), "k")
    git(repo, "push", "-q", hosted.prepare(at_host)["mirror"], f"{base}:refs/orchestra/base/r1")
    run = Run(id="r1", agent="sleeper", spec="work", task="x", branch="orchestra/work/r1/sleeper", worktree="",
              base=base, target="main", agent_config=agent_config(fleet.score.agents[0]), spec_config=None)
    first = hosted.start(at_host, order_of(run, {}), "run")
    try:
        again = hosted.start(at_host, order_of(run, {}), "run")  # its relay died before it heard the answer
        assert again["pid"] == first["pid"]
        assert supervisors_of(at_host.state_dir, "r1") == [first["pid"]]
    finally:
        hosted.stop(at_host, "r1")
