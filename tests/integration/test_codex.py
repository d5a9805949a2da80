"""Codex CLI itself (the real CLI, pinned in ./dev) driven through orchestra's codex preset, offline.

Codex talks to the scripted fake Responses server (tests/harness/fake_responses.py) with a fake key from
api_key_env; the server makes it run one real edit through its own shell tool (exec_command). `./dev test`
installs Codex into a cached directory and names its executable in ORCHESTRA_CODEX_BIN; without that
variable these tests fail (they do not skip), so that plain pytest cannot look green while testing nothing.

Nothing leaves the machine: every HTTP(S) request that does not go to 127.0.0.1 is sent to a local proxy
that records and refuses it, and the tests assert it saw none.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.core.agents.presets import cli_invocation, interactive_command, recognised_failure, stall_lines
from orchestra.core.base.findings import CHANGES_REQUESTED
from orchestra.core.supervise.activity import ActivityWatch
from tests.core.helpers import wait_for, wait_settled
from tests.harness.fake_responses import FakeResponses, function_call, status, text
from tests.integration.machine import BUGGY, CliMachine, FIXED, RefusingProxy, buggy_repo, surroundings
from tests.integration.machine import files_holding, written_files

KEY = "sk-codex-test-5ecret-c0d3"
KEY_ENV = "FAKE_PROVIDER_KEY"
TASK = "Fix mean() in calc/stats.py: it divides by len(values) - 1 instead of len(values)."
FIX_COMMAND = "sed -i 's|(len(values) - 1)|len(values)|' calc/stats.py"
REDIRECT = "Also add a docstring to mean()."


class Machine(CliMachine):
    """What Codex finds around it: itself on PATH as `codex`, the key, and a refusing proxy."""

    cli, variable, title = "codex", "ORCHESTRA_CODEX_BIN", "Codex CLI (npm @openai/codex)"

    def __init__(self, tmp_path: Path, proxy: RefusingProxy) -> None:
        super().__init__(tmp_path, proxy, KEY_ENV, KEY)
        # Codex (0.171) makes no helper for its own sandbox when its home is under the temporary directory
        # (tests' homes are under /tmp), and then every command fails: the temporary directory is elsewhere.
        self.tmp = tmp_path / "codex-tmp"

    def env(self) -> dict[str, str]:
        self.tmp.mkdir(exist_ok=True)
        return {**super().env(), "TMPDIR": str(self.tmp)}


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    yield from surroundings(Machine, tmp_path)


@pytest.fixture
def server() -> Iterator[FakeResponses]:
    with FakeResponses() as fake:
        yield fake


def codex_agent(url: str) -> dict[str, str]:
    return {"name": "codex", "kind": "cli", "preset": "codex", "model": "fake-model", "api_base": url,
            "api_key_env": KEY_ENV}


def run_codex(repo: Path, machine: Machine, agent: dict, prompt: str, redirect: str | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """One turn of the codex preset in repo, as the supervisor runs it (stdin at /dev/null)."""
    environ = {**os.environ, **machine.env()}
    invocation = cli_invocation(agent, prompt, environ, redirect=redirect)
    assert KEY not in " ".join(invocation.argv)
    return subprocess.run(invocation.argv, cwd=repo, env={**environ, **invocation.env}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)


def user_texts(request: dict) -> list[str]:
    return [part.get("text", "") for item in request["input"] if item.get("role") in ("user", "assistant")
            for part in item.get("content") or ()]


# --------------------------------------------------------------------------- the preset, run directly


def test_codex_sends_every_request_to_api_base_with_the_key(tmp_path: Path, machine: Machine,
                                                            server: FakeResponses) -> None:
    repo = buggy_repo(tmp_path / "repo")
    server.script(function_call("exec_command", {"cmd": FIX_COMMAND}), text("Fixed mean()."))
    done = run_codex(repo, machine, codex_agent(server.url), TASK)
    output = f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, output
    assert (repo / "calc" / "stats.py").read_text() == FIXED, (output, [r["input"][-2:] for r in server.requests[1:]])
    assert len(server.requests) == 2 and server.refused == [], (server.refused, output)  # no WebSocket tries
    assert all(h["Authorization"] == f"Bearer {KEY}" for h in server.headers)
    assert TASK in user_texts(server.requests[0])
    assert server.requests[1]["input"][-1]["type"] == "function_call_output"
    assert not machine.proxy.requests, f"Codex reached outside: {machine.proxy.requests}"


def test_a_bad_key_is_a_failure_with_codexs_message(tmp_path: Path, machine: Machine, server: FakeResponses) -> None:
    repo = buggy_repo(tmp_path / "repo")
    server.default = status(401)
    agent = codex_agent(server.url)
    done = run_codex(repo, machine, agent, TASK)
    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode != 0, done.stderr
    reason = recognised_failure(agent, lines)
    assert reason is not None and "401 Unauthorized" in reason and "Incorrect API key" in reason, done.stderr
    assert len(server.requests) <= 3  # the provider's short retries, not codex's default of five


def test_codex_with_no_server_shows_as_stalled_with_its_words(tmp_path: Path, machine: Machine) -> None:
    repo = buggy_repo(tmp_path / "repo")
    with socket.socket() as sock:  # a port nothing listens on: every connection is refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    agent = codex_agent(url)
    environ = {**os.environ, **machine.env()}
    invocation = cli_invocation(agent, TASK, environ)
    watch = ActivityWatch(stall_lines=stall_lines(agent))
    started = time.monotonic()
    process = subprocess.Popen(invocation.argv, cwd=repo, env={**environ, **invocation.env}, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            watch.line(line.rstrip("\n"), time.monotonic())
            if watch.assess(time.monotonic() + watch.waiting_after).state == "stalled":
                break
            assert time.monotonic() - started < 30, "codex said nothing its preset knows as a stall"
        activity = watch.assess(time.monotonic() + watch.waiting_after)
        assert activity.state == "stalled" and "waiting for network" in activity.reason, activity
    finally:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- through the fleet


def fleet_score(url: str) -> str:
    return (
        '[[agents]]\nname = "codex"\nkind = "cli"\npreset = "codex"\nmodel = "fake-model"\n'
        f'api_base = "{url}"\napi_key_env = "{KEY_ENV}"\ntimeout = 120\n\n'
        f'[[specs]]\nid = "fix-mean"\nintent = "{TASK}"\nallow = ["calc/**"]\n'
        "verify = [\"grep -qF 'return sum(values) / len(values)' calc/stats.py\"]\n"
    )


def test_a_codex_run_reaches_review_with_its_edit_and_a_redirect_continues_its_session(
        tmp_path: Path, machine: Machine, server: FakeResponses, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in machine.env().items():
        monkeypatch.setenv(name, value)
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    server.script(function_call("exec_command", {"cmd": FIX_COMMAND}), text("Fixed mean()."))
    spawned = time.monotonic()
    run = fleet.spawn("fix-mean")[0]
    run = wait_settled(fleet, run.id, timeout=90)
    assert run.state == "review", f"{run.state}: {run.message}"
    assert run.changed_paths == ["calc/stats.py"], run.changed_paths
    diff = fleet.diff(run)
    assert "-    return sum(values) / (len(values) - 1)" in diff and "+    return sum(values) / len(values)" in diff
    assert (repo / "calc" / "stats.py").read_text() == BUGGY
    assert len(server.requests) == 2 and server.refused == []
    assert all(h["Authorization"] == f"Bearer {KEY}" for h in server.headers)
    print(f"\ncodex turn through the fleet: {time.monotonic() - spawned:.2f}s from spawn to review")

    server.script(text("Added nothing more."))
    fleet.redirect(run.id, REDIRECT)
    run = wait_for(lambda: (r := fleet.get(run.id)) and r.state in ("review", "failed") and len(server.requests) >= 3
                   and r, timeout=90, message="the redirected turn did not settle")
    assert run.state == "review", run.message
    resumed = user_texts(server.requests[2])
    assert any(TASK in said for said in resumed) and "Fixed mean()." in resumed and resumed[-1] == REDIRECT, resumed  # the same session
    written = written_files(fleet)
    assert written and not files_holding(written, KEY)
    assert not machine.proxy.requests, f"Codex reached outside: {machine.proxy.requests}"


def test_a_codex_run_refused_by_the_server_fails_with_codexs_message(
        tmp_path: Path, machine: Machine, server: FakeResponses, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in machine.env().items():
        monkeypatch.setenv(name, value)
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    server.default = status(401)
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=90)
    assert run.state == "failed"
    assert "401" in run.message and "Incorrect API key" in run.message, run.message


# --------------------------------------------------------------------------- as a reviewer


def review_score(url: str) -> str:
    return ('[review]\nagents = ["critic"]\n'
            "[[agents]]\nname = \"author\"\nkind = \"shell\"\n"
            "command = \"printf 'def answer():\\\\n    return 42\\\\n' > src/app.py\"\n"
            '[[agents]]\nname = "critic"\nkind = "cli"\npreset = "codex"\nrole = "review"\nmodel = "fake-model"\n'
            f'api_base = "{url}"\napi_key_env = "{KEY_ENV}"\n'
            '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n')


def test_codex_reviews_read_only_and_the_gate_gets_its_verdict(
        repo: Path, machine: Machine, server: FakeResponses, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in machine.env().items():
        monkeypatch.setenv(name, value)
    finding = {"title": "answer() ignores its input", "body": "It always returns a constant.", "priority": "P1",
               "confidence": 0.8, "path": "src/app.py", "line_start": 2, "line_end": 2}
    server.script(text(json.dumps({"findings": [finding], "explanation": "Looks at the change."})))
    fleet = make_fleet(repo, review_score(server.url))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=90)
    assert run.state == "review", run.message
    gate = wait_for(lambda: (g := fleet.get(run.id).gates.get("review-critic")) and g.status != "pending" and g,
                    timeout=90, message="no review verdict from codex")
    assert (gate.status, gate.verdict) == ("failed", CHANGES_REQUESTED), gate
    assert gate.findings[0]["priority"] == "P1"
    assert len(server.requests) == 1 and server.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert (Path(run.worktree) / "src" / "app.py").read_text() == "def answer():\n    return 42\n"


# --------------------------------------------------------------------------- the `O` key


def test_the_interactive_command_sees_exec_sessions(tmp_path: Path, machine: Machine) -> None:
    command = interactive_command(codex_agent("http://127.0.0.1:1/v1"))
    assert command is not None and command[:4] == ["codex", "resume", "--last", "--include-non-interactive"]
    assert f'env_key="{KEY_ENV}"' in " ".join(command)  # the user's own variable, in the UI's environment


def test_codex_opened_by_hand_leaves_no_daemon_behind(tmp_path: Path, machine: Machine) -> None:
    """The `O` key: codex's own interface in a real terminal (tmux); once it is gone, nothing of it runs on."""
    import shlex
    import time

    from tests.core.helpers import wait_for

    repo = buggy_repo(tmp_path / "repo")
    # The default provider (no api_base): that is when 0.171 starts its app-server daemon.
    command = interactive_command({"name": "codex", "kind": "cli", "preset": "codex"})
    assert command is not None and "daemon_auto_start" in command
    home = Path(os.environ["HOME"])
    environ = {**os.environ, **machine.env()}
    socket = str(tmp_path / "tmux.sock")
    tmux = ["tmux", "-S", socket]
    line = " ".join(shlex.quote(part) for part in command)
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "30", "-c", str(repo), line], env=environ,
                   check=True)
    def daemons() -> list[str]:
        return [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
                .splitlines() if str(home) in line and "app-server" in line]

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p"], env=environ, capture_output=True, text=True).stdout

    left: list[str] = []
    try:
        # Its first screen (a sign-in choice, with no key in a fresh home) is up: it is running.
        wait_for(lambda: "Codex" in screen(), 30, message=lambda: f"codex's first screen: {screen()}")
        # Without the fix its daemon appears within a few seconds of that screen: watch for 8.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not left:
            left = daemons()
            time.sleep(0.2)
    finally:
        subprocess.run([*tmux, "kill-server"], env=environ)
        if daemons():
            subprocess.run(["pkill", "-f", f"{home}/.codex"])  # never left running for the next test
    assert left == [], left
