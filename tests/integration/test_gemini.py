"""Gemini CLI itself (the real CLI, pinned in ./dev) driven through orchestra's gemini preset, offline.

Gemini CLI talks to the scripted fake Gemini API server (GOOGLE_GEMINI_BASE_URL, the key from api_key_env
as GEMINI_API_KEY), which answers with calls of Gemini CLI's own tools (`replace`), so the edit is made by
Gemini CLI. `./dev test` installs the pinned CLI and names its executable in ORCHESTRA_GEMINI_BIN; without
that variable these tests fail (they do not skip), so a run of plain pytest cannot look green while testing
nothing.

The home Gemini CLI finds is a user's who signed in with an API key: ~/.gemini/settings.json chooses the
"gemini-api-key" auth type (0.61 cannot use a base URL from the environment alone: see the last test) and
turns usage statistics off (Gemini CLI would otherwise send them to play.googleapis.com). Every HTTP(S)
request that does not go to 127.0.0.1 is sent to a local proxy that records and refuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.core.agents.presets import cli_invocation
from orchestra.core.base.findings import CHANGES_REQUESTED
from orchestra.core.fleet import Fleet
from tests.conftest import git
from tests.core.helpers import events, output_lines, wait_for, wait_settled
from tests.harness.fake_gemini import FakeGemini, function_calls, status, text
from tests.integration.machine import BUGGY, CliMachine, FIXED, RefusingProxy, buggy_repo, surroundings

KEY = "AIza-gemini-test-5ecret-c0de"
KEY_ENV = "FAKE_GEMINI_KEY"
MODEL = "fake-gemini"  # with no model Gemini CLI first asks a routing model to classify the prompt
DOCUMENTED = 'def mean(values):\n    """The arithmetic mean of values."""\n    return sum(values) / len(values)\n'
TASK = "Fix mean() in calc/stats.py: it divides by len(values) - 1 instead of len(values)."
REDIRECT = "Also give mean() a docstring."
FIX = function_calls(("replace", {"file_path": "calc/stats.py", "instruction": "Divide by the number of values.",
                                  "old_string": "(len(values) - 1)", "new_string": "len(values)"}))
DOCSTRING = function_calls(("replace", {"file_path": "calc/stats.py", "instruction": "Document mean().",
                                        "old_string": "def mean(values):\n",
                                        "new_string": 'def mean(values):\n    """The arithmetic mean of values."""\n'}))
# What a user who signed in with a key has, and usage statistics off.
SETTINGS = {"security": {"auth": {"selectedType": "gemini-api-key"}}, "privacy": {"usageStatisticsEnabled": False}}


class Machine(CliMachine):
    """What Gemini CLI finds around it: itself on PATH as `gemini`, the key, a refusing proxy, a signed-in home."""

    cli, variable, title = "gemini", "ORCHESTRA_GEMINI_BIN", "Gemini CLI"

    def __init__(self, tmp_path: Path, proxy: RefusingProxy) -> None:
        super().__init__(tmp_path, proxy, KEY_ENV, KEY)
        self.home = Path(os.environ["HOME"])  # the isolated home of tests/conftest.py

    def env(self, *, settings: dict | None = SETTINGS) -> dict[str, str]:
        """Variables to add to the environment Gemini CLI starts in, its settings written in the home."""
        if settings is not None:
            (self.home / ".gemini").mkdir(exist_ok=True)
            (self.home / ".gemini" / "settings.json").write_text(json.dumps(settings))
        return super().env()

    def gemini_files(self) -> list[Path]:
        return [p for p in (self.home / ".gemini").rglob("*") if p.is_file()]


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    yield from surroundings(Machine, tmp_path)


@pytest.fixture
def server() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def environment(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> Machine:
    """The machine's variables in this process's environment: the supervisor, and so Gemini CLI, inherit them."""
    for name, value in machine.env().items():
        monkeypatch.setenv(name, value)
    return machine


def gemini_agent(url: str) -> dict[str, str]:
    return {"name": "gemini", "kind": "cli", "preset": "gemini", "model": MODEL, "api_base": url,
            "api_key_env": KEY_ENV}


def fleet_score(url: str) -> str:
    return (
        f'[[agents]]\nname = "gemini"\nkind = "cli"\npreset = "gemini"\nmodel = "{MODEL}"\n'
        f'api_base = "{url}"\napi_key_env = "{KEY_ENV}"\ntimeout = 120\n\n'
        f'[[specs]]\nid = "fix-mean"\nintent = "{TASK}"\nallow = ["calc/**"]\n'
        "verify = [\"grep -qF 'return sum(values) / len(values)' calc/stats.py\"]\n"
    )


def texts(request: dict, role: str) -> list[str]:
    """The text parts of every turn of role in a generate request."""
    return [part["text"] for turn in request["contents"] if turn["role"] == role
            for part in turn["parts"] if "text" in part]


def calls_in(request: dict) -> list[tuple[str, dict]]:
    """The function calls of the model's earlier turns a generate request carries."""
    return [(part["functionCall"]["name"], part["functionCall"]["args"]) for turn in request["contents"]
            for part in turn["parts"] if "functionCall" in part]


def key_free(fleet: Fleet) -> list[Path]:
    """Every file orchestra wrote for the fleet (state, worktrees, jails: not what links lead to, such as
    ~/.gemini); the test fails on any holding the key."""
    written = [Path(top) / name for place in (fleet.repo.state_dir, fleet.repo.worktrees_dir, fleet.repo.jails_dir)
               for top, _, names in os.walk(place) for name in names]
    assert written and not [p for p in written if p.is_file() and KEY in p.read_text(errors="replace")]
    return written


# --------------------------------------------------------------------------- the preset, run directly


def run_gemini(repo: Path, machine: Machine, url: str, prompt: str, *,
               redirect: str | None = None) -> subprocess.CompletedProcess[str]:
    """One turn of the gemini preset in repo, as the supervisor runs it: the user's environment + the preset's."""
    environ = {**os.environ, **machine.env()}
    invocation = cli_invocation(gemini_agent(url), prompt, environ, redirect=redirect)
    assert invocation.env["GEMINI_API_KEY"] == KEY and invocation.secret_names == ("GEMINI_API_KEY",)
    return subprocess.run(invocation.argv, cwd=repo, env={**environ, **invocation.env}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=90, check=False)


def test_gemini_makes_the_scripted_edit_with_its_own_tool_and_continues_its_session(
        tmp_path: Path, machine: Machine, server: FakeGemini) -> None:
    repo = buggy_repo(tmp_path / "repo")
    server.script(FIX, text("Fixed mean()."))
    done = run_gemini(repo, machine, server.url, TASK)
    output = f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0 and done.stdout.strip() == "Fixed mean().", output
    assert (repo / "calc" / "stats.py").read_text() == FIXED, output

    # Streaming requests to the model named, with the key in Google's header, offering Gemini CLI's tools:
    # under auto_edit the edit tools, but not the shell (it would ask, and headless nobody can answer).
    assert server.methods == ["streamGenerateContent"] * 2 and server.models == [MODEL] * 2
    assert set(server.keys) == {KEY} and server.headers[0]["x-goog-api-key"] == KEY
    assert {"replace", "write_file", "read_file"} <= set(server.tool_names()), server.tool_names()
    assert "run_shell_command" not in server.tool_names()
    assert texts(server.requests[0], "user")[-1] == TASK
    response = server.requests[1]["contents"][-1]["parts"][0]["functionResponse"]
    assert response["name"] == "replace" and "Successfully modified" in response["response"]["output"]

    # A redirect resumes the same session: the model gets the whole conversation so far, then the instruction.
    server.script(DOCSTRING, text("Added the docstring."))
    again = run_gemini(repo, machine, server.url, TASK, redirect=REDIRECT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (repo / "calc" / "stats.py").read_text() == DOCUMENTED
    resumed = server.requests[2]
    assert TASK in texts(resumed, "user") and texts(resumed, "user")[-1] == REDIRECT
    assert "Fixed mean()." in texts(resumed, "model") and calls_in(resumed)[0][0] == "replace"
    assert git(repo, "diff", "--name-only").splitlines() == ["calc/stats.py"]
    assert not git(repo, "ls-files", "--others", "--exclude-standard")  # Gemini CLI keeps its files in ~/.gemini
    assert not [p for p in machine.gemini_files() if KEY in p.read_text(errors="replace")]
    assert not machine.proxy.requests, f"Gemini CLI reached outside: {machine.proxy.requests}"


def test_without_the_presets_trust_gemini_refuses_the_worktree(tmp_path: Path, machine: Machine,
                                                               server: FakeGemini) -> None:
    # Folder trust is on by default in 0.61: a new directory (every run's worktree is one) is untrusted, and
    # headless Gemini CLI then exits 55 before asking the model anything. The preset sets the variable.
    repo = buggy_repo(tmp_path / "repo")
    environ = {**os.environ, **machine.env()}
    invocation = cli_invocation(gemini_agent(server.url), TASK, environ)
    assert invocation.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    env = {**environ, **invocation.env}
    del env["GEMINI_CLI_TRUST_WORKSPACE"]
    done = subprocess.run(invocation.argv, cwd=repo, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=90, check=False)
    assert done.returncode == 55 and "GEMINI_CLI_TRUST_WORKSPACE=true" in done.stderr, done.stderr
    assert server.calls == []


# --------------------------------------------------------------------------- through the fleet


def test_a_gemini_run_reaches_review_with_its_edit_and_a_redirect_continues_it(
        tmp_path: Path, environment: Machine, server: FakeGemini, make_fleet) -> None:
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    server.script(FIX, text("Fixed mean()."))
    run = fleet.spawn("fix-mean")[0]
    run = wait_settled(fleet, run.id, timeout=90)
    assert run.state == "review", f"{run.state}: {run.message}\n" + "\n".join(output_lines(fleet, run.id))
    assert (run.files_changed, run.changed_paths) == (1, ["calc/stats.py"])
    assert run.gates and all(g.status == "passed" for g in run.gates.values()), run.gates
    diff = fleet.diff(run)
    assert "-    return sum(values) / (len(values) - 1)" in diff and "+    return sum(values) / len(values)" in diff
    assert (repo / "calc" / "stats.py").read_text() == BUGGY  # the user's checkout is untouched until accept
    assert TASK in texts(server.requests[0], "user")[-1]

    first_tree = run.tree
    server.script(DOCSTRING, text("Added the docstring."))
    fleet.redirect(run.id, REDIRECT)
    run = wait_for(lambda: (now := fleet.get(run.id)).tree != first_tree and now.state != "working" and now,
                   90, message="the redirected run to finish its second turn")
    run = wait_settled(fleet, run.id, timeout=60)
    assert run.state == "review", f"{run.state}: {run.message}\n" + "\n".join(output_lines(fleet, run.id))
    assert '+    """The arithmetic mean of values."""' in fleet.diff(run)
    resumed = server.requests[2]
    assert any(TASK in t for t in texts(resumed, "user")[:-1]), texts(resumed, "user")
    assert REDIRECT in texts(resumed, "user")[-1] and "Fixed mean()." in texts(resumed, "model")
    assert calls_in(resumed)[0][0] == "replace"
    assert set(server.keys) == {KEY}
    key_free(fleet)
    assert not environment.proxy.requests, f"Gemini CLI reached outside: {environment.proxy.requests}"


def test_an_invalid_key_fails_the_run_with_geminis_own_message(tmp_path: Path, environment: Machine,
                                                               server: FakeGemini, make_fleet) -> None:
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    server.default = status(400, api_key_invalid=True)
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=90)
    said = "\n".join(output_lines(fleet, run.id))
    assert run.state == "failed", f"{run.state}: {run.message}\n{said}"
    assert len(server.requests) == 1  # a bad key is not retried
    assert "API key not valid" in said
    assert "API key not valid" in run.message, run.message
    key_free(fleet)


def test_without_an_auth_type_gemini_refuses_a_custom_endpoint_and_the_run_says_so(
        tmp_path: Path, machine: Machine, server: FakeGemini, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh home: from GOOGLE_GEMINI_BASE_URL alone, Gemini CLI 0.61 picks its "gateway" auth type, which
    # its headless mode then rejects before any request.
    for name, value in machine.env(settings=None).items():
        monkeypatch.setenv(name, value)
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=90)
    said = "\n".join(output_lines(fleet, run.id))
    assert run.state == "failed" and "Invalid auth method selected." in said, f"{run.state}: {run.message}\n{said}"
    assert server.calls == []


def test_with_no_network_gemini_shows_as_stalled_while_it_retries(tmp_path: Path, environment: Machine,
                                                                  make_fleet) -> None:
    # Nothing listens on the discard port: every request fails at once, and Gemini CLI retries it (up to 10
    # times, 5 to 30 s apart), printing each failure and its stack trace and nothing else.
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score("http://127.0.0.1:9"))
    run = fleet.spawn("fix-mean")[0]
    run = wait_for(lambda: (now := fleet.get(run.id)).activity and now.activity["state"] == "stalled" and now,
                   60, message="the run to show as stalled")
    # The reason is the "Attempt N failed" line, not the stack trace printed after it.
    assert run.state == "working" and run.activity["reason"].startswith("Attempt "), run.activity
    said = "\n".join(output_lines(fleet, run.id))
    assert "Retrying with backoff" in said and "fetch failed" in said, said


# --------------------------------------------------------------------------- as a reviewer


def answer(*findings: dict, explanation: str = "Looks at the change.") -> str:
    return json.dumps({"findings": list(findings), "explanation": explanation})


def review_score(url: str) -> str:
    author = "printf 'def answer():\\n    return 42\\n' > src/app.py"
    return ('[review]\nagents = ["critic"]\n'
            f'[[agents]]\nname = "author"\nkind = "shell"\ncommand = "{author}"\n'
            f'[[agents]]\nname = "critic"\nkind = "cli"\npreset = "gemini"\nrole = "review"\nmodel = "{MODEL}"\n'
            f'api_base = "{url}"\napi_key_env = "{KEY_ENV}"\ntimeout = 120\n'
            '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n'
            'verify = ["grep -q 42 src/app.py"]\n')


def app_repo(root: Path) -> Path:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("def answer():\n    return 41\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def test_gemini_reviews_read_only_and_the_gate_gets_its_verdict(tmp_path: Path, environment: Machine,
                                                                server: FakeGemini, make_fleet) -> None:
    repo = app_repo(tmp_path / "repo")
    fleet = make_fleet(repo, review_score(server.url))
    finding = {"title": "answer() ignores its input", "body": "It always returns a constant.", "priority": "P1",
               "confidence": 0.8, "path": "src/app.py", "line_start": 2, "line_end": 2}
    # The reviewer tries to write (a tool it is not offered), then answers.
    server.script(function_calls(("write_file", {"file_path": "src/app.py", "content": "hacked\n"})),
                  text(answer(finding)))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=120)
    assert run.state == "review", run.message
    gate = run.gates["review-critic"]
    assert (gate.kind, gate.status, gate.verdict, gate.tree) == ("review", "failed", CHANGES_REQUESTED, run.tree), \
        gate.summary
    assert [(f["priority"], f["path"], f["line_start"]) for f in gate.findings] == [("P1", "src/app.py", 2)]
    assert (Path(run.worktree) / "src" / "app.py").read_text() == "def answer():\n    return 42\n"
    asked = server.requests[0]
    prompt = "\n".join(texts(asked, "user"))
    assert "Make answer() return 42" in prompt and "+    return 42" in prompt
    offered = set(server.tool_names())
    assert "read_file" in offered and not offered & {"replace", "write_file", "run_shell_command"}, offered
    assert set(server.keys) == {KEY}
    key_free(fleet)
    assert not environment.proxy.requests, f"Gemini CLI reached outside: {environment.proxy.requests}"


# --------------------------------------------------------------------------- numbers


def test_orchestra_adds_little_to_a_gemini_turn(tmp_path: Path, environment: Machine, server: FakeGemini,
                                                make_fleet) -> None:
    """Spawn to the first output line in the run's log, and a turn through the fleet against the same turn run
    directly (Gemini CLI's own start-up and work): printed, and the overhead bounded."""
    direct_repo = buggy_repo(tmp_path / "direct")
    server.script(FIX, text("Fixed mean()."))
    started = time.monotonic()
    assert run_gemini(direct_repo, environment, server.url, TASK).returncode == 0
    direct = time.monotonic() - started

    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    server.script(FIX, text("Fixed mean()."))
    spawned = time.time()
    run = fleet.spawn("fix-mean")[0]
    run = wait_for(lambda: (now := fleet.get(run.id)).finished and now, 90, interval=0.02,
                   message="the run's agent to finish")
    first = min(events(fleet, run.id, "output"), key=lambda e: e["t"])
    through_fleet = run.finished - spawned
    print(f"\ngemini: spawn to first output line {first['t'] - spawned:.2f}s ({first['text'][:40]!r}); "
          f"turn directly {direct:.2f}s, "
          f"through the fleet {through_fleet:.2f}s, overhead {through_fleet - direct:.2f}s")
    assert run.state == "review", run.message
    assert through_fleet - direct < 10
