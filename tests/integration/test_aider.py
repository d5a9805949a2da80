"""Aider itself (the real CLI, pinned in ./dev) driven through orchestra's aider preset, offline.

Aider talks to the scripted fake OpenAI server; the reply is a file listing in Aider's "whole" edit
format (what it asks for with a model it does not know, such as openai/fake-model), and Aider must
write it to the file. `./dev test` installs Aider into a cached virtualenv and names its executable
in ORCHESTRA_AIDER_BIN; without that variable these tests fail (they do not skip), so that a run of
plain pytest cannot look green while testing nothing.

Nothing leaves the machine: every HTTP(S) request that does not go to 127.0.0.1 is sent to a local
proxy that records and refuses it, and the browser Aider would open is a script that records URLs.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.core.agents.presets import cli_invocation, home_files
from tests.conftest import git
from tests.core.helpers import output_lines, wait_for, wait_settled
from tests.harness.fake_openai import FakeOpenAI, text
from tests.integration.machine import BUGGY, FIXED, RefusingProxy, buggy_repo, surroundings

KEY = "sk-aider-test-5ecret-b0a7"
KEY_ENV = "FAKE_PROVIDER_KEY"
TASK = "Fix mean() in calc/stats.py: it divides by len(values) - 1 instead of len(values)."
# Aider's whole edit format: the path alone on a line, then the entire new file in a fence.
REPLY = f"mean() divides by one less than the number of values.\n\ncalc/stats.py\n```\n{FIXED}```\n"
# Aider 0.86.2 fetches litellm's price list from GitHub for its own model info (aider/models.py,
# ModelInfoManager: no flag or variable turns it off; LITELLM_LOCAL_MODEL_COST_MAP only stops litellm's
# own fetch at import) unless a .aider.model.metadata.json in its home names the model, which the
# preset's home_files puts there: nothing may leave the machine.
ALLOWED_OUTSIDE: set[str] = set()


# --------------------------------------------------------------------------- the machine around Aider


def aider_executable() -> Path:
    """The Aider that ./dev installed; a failure (not a skip) when it is missing."""
    value = os.environ.get("ORCHESTRA_AIDER_BIN")
    if not value:
        pytest.fail("ORCHESTRA_AIDER_BIN is not set: run these tests with `./dev test` (it installs the "
                    "pinned Aider into a cached virtualenv and sets the variable), not with plain pytest",
                    pytrace=False)
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"ORCHESTRA_AIDER_BIN={value} is not an executable file: run `./dev test` again",
                    pytrace=False)
    return path


class Machine:
    """What Aider finds around it: itself on PATH, the key, a refusing proxy and a recording browser."""

    def __init__(self, tmp_path: Path, proxy: RefusingProxy) -> None:
        self.proxy = proxy
        self.bin = tmp_path / "aider-bin"
        self.browser_log = tmp_path / "browser.log"
        self.browser = tmp_path / "browser"
        self.browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{self.browser_log}"\n')
        self.browser.chmod(0o755)

    def env(self) -> dict[str, str]:
        """Variables to add to the environment Aider starts in (checked here, so a missing Aider fails the test)."""
        if not self.bin.exists():
            # Only `aider` goes on PATH, not its virtualenv's bin: that would put Aider's python and pip
            # first for everything else the agent (and the gates) run.
            self.bin.mkdir()
            (self.bin / "aider").symlink_to(aider_executable())
        env = {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", KEY_ENV: KEY, "BROWSER": str(self.browser)}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = self.proxy.url
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"  # the fake model server
        return env

    def opened_urls(self) -> list[str]:
        return self.browser_log.read_text().splitlines() if self.browser_log.exists() else []


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    yield from surroundings(Machine, tmp_path)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def aider_agent(url: str) -> dict[str, str]:
    return {"name": "aider", "kind": "cli", "preset": "aider", "model": "openai/fake-model", "api_base": url,
            "api_key_env": KEY_ENV}


def run_aider(repo: Path, machine: Machine, url: str, prompt: str) -> subprocess.CompletedProcess[str]:
    """One turn of the aider preset in repo, as the supervisor runs it: the user's environment + the preset's."""
    environ = {**os.environ, **machine.env()}
    for relative, text_ in home_files(aider_agent(url)).items():  # what the supervisor puts in the run's home
        (Path(environ["HOME"]) / relative).write_text(text_)
    invocation = cli_invocation(aider_agent(url), prompt, environ)
    assert invocation.env["OPENAI_API_KEY"] == KEY and "OPENAI_API_KEY" in invocation.secret_names
    return subprocess.run(invocation.argv, cwd=repo, env={**environ, **invocation.env}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=90)


def outside_requests(machine: Machine) -> set[str]:
    return machine.proxy.hosts() - ALLOWED_OUTSIDE


# --------------------------------------------------------------------------- the preset, run directly


def test_aider_applies_the_scripted_fix_through_the_preset(tmp_path: Path, machine: Machine,
                                                           server: FakeOpenAI) -> None:
    repo = buggy_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    server.script(text(REPLY))
    done = run_aider(repo, machine, server.url, TASK)
    output = f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, output
    assert (repo / "calc" / "stats.py").read_text() == FIXED, output
    assert "Applied edit to calc/stats.py" in done.stdout, output

    # One non-streaming chat request (--no-stream), with the key from api_key_env, the task and the file.
    assert len(server.requests) == 1, output
    request = server.requests[0]
    assert request["model"] == "fake-model" and not request.get("stream"), request
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    messages = request["messages"]
    assert messages[0]["role"] == "system" and "file listing" in messages[0]["content"]  # whole edit format
    assert messages[-1]["role"] == "user" and messages[-1]["content"].startswith(TASK)
    assert any(BUGGY in m["content"] for m in messages[:-1]), "Aider did not send calc/stats.py"

    # Aider left the commit to orchestra (--no-auto-commits) and touched nothing else that git tracks;
    # what it adds are its own .aider* files (orchestra keeps those out of a run's commits).
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "diff", "--name-only").splitlines() == ["calc/stats.py"]
    untracked = git(repo, "ls-files", "--others").splitlines()
    assert all(path.startswith(".aider") for path in untracked), untracked
    assert not (repo / ".gitignore").exists()  # --no-gitignore
    assert not outside_requests(machine), f"Aider reached outside: {machine.proxy.requests}"


def test_aider_opens_no_browser_for_a_model_it_does_not_know(tmp_path: Path, machine: Machine,
                                                             server: FakeOpenAI) -> None:
    # With --yes-always, Aider answers "Open documentation url for more info?" by opening a browser:
    # for every model missing from litellm's list unless model warnings are off. On a desktop that is
    # a browser tab per run; on a server with only a text browser, a browser that waits on the agent's
    # stdin forever.
    repo = buggy_repo(tmp_path / "repo")
    server.script(text("Nothing to change."))
    done = run_aider(repo, machine, server.url, TASK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(server.requests) == 1
    assert machine.opened_urls() == [], (
        f"Aider opened {machine.opened_urls()} in a browser: the aider preset needs --no-show-model-warnings")


# --------------------------------------------------------------------------- through the fleet


def fleet_score(url: str) -> str:
    return (
        '[[agents]]\nname = "aider"\nkind = "cli"\npreset = "aider"\nmodel = "openai/fake-model"\n'
        f'api_base = "{url}"\napi_key_env = "{KEY_ENV}"\ntimeout = 120\n\n'
        f'[[specs]]\nid = "fix-mean"\nintent = "{TASK}"\nallow = ["calc/**"]\n'
        "verify = [\"grep -qF 'return sum(values) / len(values)' calc/stats.py\"]\n"
    )


def test_an_aider_run_reaches_review_with_its_edit(tmp_path: Path, machine: Machine, server: FakeOpenAI,
                                                   make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in machine.env().items():  # the supervisor, and so Aider, inherit them
        monkeypatch.setenv(name, value)
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    server.script(text(REPLY))
    run = fleet.spawn("fix-mean")[0]
    run = wait_settled(fleet, run.id, timeout=60)
    assert run.state == "review", f"{run.state}: {run.message}"
    assert (run.files_changed, run.changed_paths) == (1, ["calc/stats.py"]), \
        f"{run.changed_paths}: Aider's own files (.aider*, also directories) must stay out of a run's commits"
    assert len(run.gates) == 3 and all(g.status == "passed" for g in run.gates.values()), run.gates  # + secrets
    diff = fleet.diff(run)
    assert "-    return sum(values) / (len(values) - 1)" in diff and "+    return sum(values) / len(values)" in diff
    assert (repo / "calc" / "stats.py").read_text() == BUGGY  # the user's checkout is untouched until accept

    assert len(server.requests) == 1
    assert TASK in server.requests[0]["messages"][-1]["content"]
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    written = [p for p in fleet.repo.state_dir.rglob("*") if p.is_file()]
    assert written and not [p for p in written if KEY in p.read_text(errors="replace")]
    assert not outside_requests(machine), f"Aider reached outside: {machine.proxy.requests}"


# --------------------------------------------------------------------------- without a model or a key


def keyless_score(model: str | None) -> str:
    """An aider agent with no api_key_env (and no provider key anywhere), and model when given."""
    return ('[[agents]]\nname = "aider"\nkind = "cli"\npreset = "aider"\ntimeout = 120\n'
            + (f'model = "{model}"\n' if model else "")
            + f'\n[[specs]]\nid = "fix-mean"\nintent = "{TASK}"\nallow = ["calc/**"]\n')


def test_an_aider_agent_with_neither_model_nor_key_is_refused_at_once(tmp_path: Path, machine: Machine,
                                                                     make_fleet) -> None:
    # Aider would pick its model from provider keys in its environment; with none it offers an OpenRouter
    # sign-in, which --yes-always accepts, and waits 5 minutes for a browser nobody opens.
    fleet = make_fleet(buggy_repo(tmp_path / "repo"), keyless_score(None))
    started = time.monotonic()
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=30)
    assert run.state == "failed" and time.monotonic() - started < 20, f"{run.state}: {run.message}"
    assert run.message.startswith("agent 'aider': aider needs a model"), run.message
    assert "OpenRouter sign-in" in run.message


def test_aider_with_a_model_but_no_key_fails_with_its_authentication_error(
        tmp_path: Path, machine: Machine, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    # Aider 0.86.2 prints litellm's error and exits 0: the run is failed with that line, not sent to review.
    for name, value in machine.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    fleet = make_fleet(buggy_repo(tmp_path / "repo"), keyless_score("anthropic/claude-sonnet-4-5"))
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=60)
    lines = output_lines(fleet, run.id)
    assert run.state == "failed" and run.exit_code == 0, f"{run.state}: {run.message}\n" + "\n".join(lines)
    assert run.message == ("Aider reported a failure though it exited 0: litellm.AuthenticationError: Missing "
                           "Anthropic API Key - A call is being made to"), run.message
    assert "The API provider is not able to authenticate you. Check your API key." in lines
    assert not outside_requests(machine), f"Aider reached outside: {machine.proxy.requests}"


def test_aider_waiting_on_an_openrouter_sign_in_shows_as_stalled(
        tmp_path: Path, machine: Machine, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    # An openrouter/ model with no OpenRouter key (and no saved sign-in): --yes-always accepts the sign-in,
    # and Aider waits 5 minutes for the browser. The run shows as stalled within seconds, with its words.
    for name, value in machine.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    fleet = make_fleet(buggy_repo(tmp_path / "repo"), keyless_score("openrouter/anthropic/claude-sonnet-4"))
    run = fleet.spawn("fix-mean")[0]
    stalled = wait_for(lambda: (r := fleet.get(run.id)).activity and r.activity["state"] == "stalled" and r, 45,
                       message=lambda: f"the run to show as stalled; output: {output_lines(fleet, run.id)}")
    assert stalled.state == "working"
    assert stalled.activity["reason"].startswith("Waiting up to 5 minutes for you to finish in the browser"), \
        stalled.activity
    lines = output_lines(fleet, run.id)
    assert "Waiting up to 5 minutes for you to finish in the browser..." in lines, lines
    assert machine.opened_urls() == []  # BROWSER=true: the preset opens nothing
    assert fleet.stop(run.id).state == "stopped"
