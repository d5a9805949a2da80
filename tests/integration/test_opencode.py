"""OpenCode itself (the real CLI, pinned in ./dev) driven through orchestra's opencode preset, offline.

OpenCode talks to the scripted fake OpenAI chat-completions server (the preset's api_base, with the key
from api_key_env, model "openai/fake-model"); the script makes it read calc/stats.py and fix it with its
own edit tool. `./dev test` installs the pinned OpenCode (npm opencode-ai, a native binary) into a cache
outside the checkout and names its executable in ORCHESTRA_OPENCODE_BIN; without that variable these tests
fail (they do not skip), so that a run of plain pytest cannot look green while testing nothing.

Nothing leaves the machine: every HTTP(S) request that does not go to 127.0.0.1 is sent to a local proxy
that records and refuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestra.core.agents.presets import cli_invocation, recognised_failure
from orchestra.core.agents.prompts import cli_prompt
from tests.core.helpers import events, output_lines, wait_for, wait_settled
from tests.harness.fake_openai import FakeOpenAI, Reply, text, tool_calls
from tests.integration.machine import CliMachine, RefusingProxy, surroundings
from tests.integration.test_aider import BUGGY, FIXED, buggy_repo

KEY = "sk-opencode-test-5ecret-c4d2"
KEY_ENV = "FAKE_PROVIDER_KEY"
# Double quotes, a double space, a word starting with '-': what `opencode run` used to quote and escape.
TASK = 'Fix mean() in calc/stats.py: it divides by "len(values) - 1"  instead of "len(values)"; keep -O safe.'
REDIRECT = 'Also say "done"  when  finished -- nothing else.'
# OpenCode installs its plugin package (@opencode-ai/plugin) into every config directory it loads, in the
# background, from npm, on every start; refused here, it logs a warning and carries on.
ALLOWED_OUTSIDE = {"registry.npmjs.org:443"}


def fix_script() -> list[Reply]:
    """Read the file (OpenCode's edit tool refuses a file not read first), fix it with edit, then say so."""
    return [tool_calls(("read", {"filePath": "calc/stats.py"})),
            tool_calls(("edit", {"filePath": "calc/stats.py", "oldString": "(len(values) - 1)",
                                 "newString": "len(values)"})),
            text("mean() now divides by len(values).")]


# --------------------------------------------------------------------------- the machine around OpenCode


class Machine(CliMachine):
    """What OpenCode finds around it: itself on PATH (as `opencode`), the key, and a refusing proxy."""

    cli, variable, title = "opencode", "ORCHESTRA_OPENCODE_BIN", "OpenCode (npm opencode-ai)"

    def __init__(self, tmp_path: Path, proxy: RefusingProxy) -> None:
        super().__init__(tmp_path, proxy, KEY_ENV, KEY)

    def outside_requests(self) -> set[str]:
        return self.proxy.hosts() - ALLOWED_OUTSIDE


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    yield from surroundings(Machine, tmp_path)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def opencode_agent(url: str) -> dict[str, str]:
    return {"name": "opencode", "kind": "cli", "preset": "opencode", "model": "openai/fake-model", "api_base": url,
            "api_key_env": KEY_ENV}


def run_opencode(repo: Path, machine: Machine, url: str, prompt: str) -> subprocess.CompletedProcess[str]:
    """One turn of the opencode preset in repo, as the supervisor runs it: the user's environment + the preset's."""
    environ = {**os.environ, **machine.env()}
    invocation = cli_invocation(opencode_agent(url), prompt, environ)
    assert KEY not in " ".join(invocation.argv) and invocation.secret_names == ("OPENCODE_CONFIG_CONTENT",)
    return subprocess.run(invocation.argv, cwd=repo, env={**environ, **invocation.env}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=90, check=False)


def user_messages(request: dict[str, Any]) -> list[str]:
    """The text of each user message of a chat request (content as a string or as text parts)."""
    found = []
    for message in request["messages"]:
        if message["role"] == "user":
            content = message["content"]
            found.append(content if isinstance(content, str) else "".join(part.get("text", "") for part in content))
    return found


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


# --------------------------------------------------------------------------- the preset, run directly


def test_opencode_receives_the_prompt_exactly(tmp_path: Path, machine: Machine, server: FakeOpenAI) -> None:
    # `opencode run` quotes every message word holding a space and escapes its quotes: a prompt given as one
    # argument reached the model as "Fix mean() ... \"len(values) - 1\" ...". The preset passes its words.
    repo = buggy_repo(tmp_path / "repo")
    prompt = f'{TASK}\n\n  Indented "line"\twith a tab, -- and a trailing space '
    server.script(text("Understood."))
    done = run_opencode(repo, machine, server.url, prompt)
    assert done.returncode == 0, shown(done)
    assert len(server.requests) == 1, f"{len(server.requests)} requests (a title request too?)\n{shown(done)}"
    assert user_messages(server.requests[0]) == [prompt]
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert server.requests[0]["model"] == "fake-model"
    assert not machine.outside_requests(), f"OpenCode reached outside: {machine.proxy.requests}"


def test_opencode_output_with_error_lines_is_not_a_failure(tmp_path: Path, machine: Machine,
                                                          server: FakeOpenAI) -> None:
    # OpenCode prints its tools' output on the stream orchestra reads: a command printing "Error: ..." in a
    # turn that went well must not make the run failed.
    repo = buggy_repo(tmp_path / "repo")
    server.script(tool_calls(("bash", {"command": "echo 'Error: boom'", "description": "Print an error line"})),
                  text("The command printed an error line, as asked."))
    done = run_opencode(repo, machine, server.url, "Run echo.")
    output = (done.stderr + done.stdout).splitlines()
    assert done.returncode == 0 and "Error: boom" in output, shown(done)
    assert recognised_failure(opencode_agent(server.url), output) is None


# --------------------------------------------------------------------------- through the fleet


def fleet_score(url: str) -> str:
    return (
        '[[agents]]\nname = "opencode"\nkind = "cli"\npreset = "opencode"\nmodel = "openai/fake-model"\n'
        f'api_base = "{url}"\napi_key_env = "{KEY_ENV}"\ntimeout = 120\n\n'
        f'[[specs]]\nid = "fix-mean"\nintent = {json.dumps(TASK)}\nallow = ["calc/**"]\n'
        "verify = [\"grep -qF 'return sum(values) / len(values)' calc/stats.py\"]\n"
    )


def test_an_opencode_run_reaches_review_with_its_edit_and_a_redirect_continues_its_session(
        tmp_path: Path, machine: Machine, server: FakeOpenAI, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in machine.env().items():  # the supervisor, and so OpenCode, inherit them
        monkeypatch.setenv(name, value)
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    server.script(*fix_script())
    spawned = time.monotonic()
    run = fleet.spawn("fix-mean")[0]
    first_line = wait_for(lambda: output_lines(fleet, run.id) and time.monotonic(), 60,
                          message="OpenCode's first output line")
    run = wait_settled(fleet, run.id, timeout=90)
    assert run.state == "review", f"{run.state}: {run.message}\n" + "\n".join(output_lines(fleet, run.id))
    print(f"\nopencode: first output line {first_line - spawned:.2f}s after spawn")
    assert (run.files_changed, run.changed_paths) == (1, ["calc/stats.py"]), run.changed_paths
    assert all(g.status == "passed" for g in run.gates.values()), run.gates
    diff = fleet.diff(run)
    assert "-    return sum(values) / (len(values) - 1)" in diff and "+    return sum(values) / len(values)" in diff
    assert (repo / "calc" / "stats.py").read_text() == BUGGY  # the user's checkout is untouched until accept
    assert (Path(run.worktree) / "calc" / "stats.py").read_text() == FIXED

    # Three model calls (read, edit, answer; no title call), each with the key and the prompt as orchestra
    # wrote it, exactly; the tool results went back to the model.
    assert len(server.requests) == 3, [user_messages(r) for r in server.requests]
    assert all(h["Authorization"] == f"Bearer {KEY}" for h in server.headers)
    assert user_messages(server.requests[0]) == [cli_prompt(run)]
    assert "Edit applied successfully." in json.dumps(server.requests[2]["messages"])

    # The redirect continues OpenCode's own session: the model gets the whole earlier conversation, then
    # the instruction, exactly.
    server.script(text("done"))
    fleet.redirect(run.id, REDIRECT)
    run = wait_for(lambda: (r := fleet.get(run.id)).redirects and r.state == "review" and r, 90,
                   message="the redirected turn to reach review")
    assert len(server.requests) == 4
    resumed = server.requests[3]["messages"]
    assert user_messages(server.requests[3]) == [cli_prompt(run), REDIRECT]
    earlier = [m for m in server.requests[2]["messages"] if m["role"] != "system"]
    assert [m for m in resumed if m["role"] != "system"][:len(earlier)] == earlier
    assert resumed[-2] == {"role": "assistant", "content": "mean() now divides by len(values)."}
    assert any("continuing the agent's own conversation" in e.get("text", "") for e in events(fleet, run.id))

    written = [p for p in fleet.repo.state_dir.rglob("*") if p.is_file()]
    assert written and not [p for p in written if KEY in p.read_text(errors="replace")]
    # Nor does OpenCode keep it (its session database and logs are in the run's private home).
    kept = [p for p in (fleet.repo.jails_dir / run.id).rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "opencode.db" for p in kept), kept
    assert not [p for p in kept if KEY.encode() in p.read_bytes()]
    assert not machine.outside_requests(), f"OpenCode reached outside: {machine.proxy.requests}"


def test_a_permission_opencode_refuses_fails_the_run_with_its_message(
        tmp_path: Path, machine: Machine, server: FakeOpenAI, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    # `opencode run` auto-rejects what its rules say to ask about (here: reading outside the worktree), which
    # ends the turn; it exits 0 all the same.
    for name, value in machine.env().items():
        monkeypatch.setenv(name, value)
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    server.script(tool_calls(("read", {"filePath": "/etc/hostname"})), text("I could not read it."))
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=90)
    lines = output_lines(fleet, run.id)
    assert run.state == "failed" and run.exit_code == 0, f"{run.state}: {run.message}\n" + "\n".join(lines)
    assert run.message == ("OpenCode reported a failure though it exited 0: Error: The user rejected permission "
                           "to use this specific tool call."), run.message
    assert "! permission requested: external_directory (/etc/*); auto-rejecting" in lines
    assert len(server.requests) == 1  # the rejection ended the turn
