"""Claude Code itself (the real CLI, pinned in ./dev) driven through orchestra's claude preset, offline.

Claude Code talks to the scripted fake Anthropic Messages server (ANTHROPIC_BASE_URL, as the preset sets it
from api_base), which answers with tool_use blocks naming Claude Code's own Edit and Write tools: Claude
Code itself must change the files. `./dev test` installs Claude Code outside the checkout and names its
executable in ORCHESTRA_CLAUDE_BIN; without that variable these tests fail (they do not skip), so that a
run of plain pytest cannot look green while testing nothing.

Nothing leaves the machine: every HTTP(S) request that does not go to 127.0.0.1 is sent to a local proxy
that records and refuses it (with an api_base the preset turns Claude Code's telemetry off; these tests
check that nothing else is tried either).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.core.agents.presets import (
    cli_invocation,
    keeps_stdin_open,
    review_invocation,
)
from orchestra.core.base.findings import CHANGES_REQUESTED
from tests.conftest import git
from tests.core.helpers import wait_for, wait_settled
from tests.harness.fake_anthropic import FakeAnthropic, status, text, tool_use
from tests.integration.machine import BUGGY, CliMachine, FIXED, RefusingProxy, buggy_repo, surroundings
from tests.integration.machine import files_holding, written_files

KEY = "sk-ant-claude-test-5ecret-7e1a"
KEY_ENV = "FAKE_ANTHROPIC_KEY"
INIT = '"""Small statistics helpers."""\n'
TASK = "Fix mean() in calc/stats.py: it divides by len(values) - 1 instead of len(values)."
AGAIN = "Also give the calc package an __init__.py with a one-line docstring."
EDIT = {"old_string": "(len(values) - 1)", "new_string": "len(values)"}
STDIN_WARNING = "no stdin data received"


# --------------------------------------------------------------------------- the machine around Claude Code


class Machine(CliMachine):
    """What Claude Code finds around it: itself on PATH as `claude`, the key, and a refusing proxy."""

    cli, variable, title = "claude", "ORCHESTRA_CLAUDE_BIN", "Claude Code"

    def __init__(self, tmp_path: Path, proxy: RefusingProxy) -> None:
        super().__init__(tmp_path, proxy, KEY_ENV, KEY)


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    yield from surroundings(Machine, tmp_path)


@pytest.fixture
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


def claude_agent(url: str) -> dict[str, str]:
    return {"name": "claude", "kind": "cli", "preset": "claude", "api_base": url, "api_key_env": KEY_ENV}


def texts(request: dict) -> list[str]:
    """Every text the client sent in a request's messages (text blocks and tool results)."""
    found = []
    for message in request["messages"]:
        content = message["content"]
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            if block.get("type") == "text":
                found.append(block["text"])
            elif block.get("type") == "tool_result":
                inner = block.get("content")
                found += [inner] if isinstance(inner, str) else [b.get("text", "") for b in inner or []]
    return found


def tool_results(request: dict) -> list[dict]:
    return [block for message in request["messages"] if isinstance(message["content"], list)
            for block in message["content"] if block.get("type") == "tool_result"]


def outside_requests(machine: Machine) -> list[str]:
    return machine.proxy.requests


# --------------------------------------------------------------------------- the preset, run directly


def test_claude_gets_dev_null_for_stdin_because_print_mode_never_asks() -> None:
    # Given a pipe, `claude -p` waits 3 s for more prompt on it and warns, every turn.
    assert not keeps_stdin_open({"name": "c", "kind": "cli", "preset": "claude"})
    assert keeps_stdin_open({"name": "c", "kind": "cli", "preset": "claude", "command": "claude -p {prompt}"})


def test_a_claude_turn_ends_without_waiting_on_its_stdin(tmp_path: Path, make_fleet,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in that reads its stdin to the end, as `claude -p` does for 3 s: given a pipe, it would wait.
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    (bin_dir / "claude").write_text("#!/bin/sh\ncat > /dev/null\nmkdir -p calc && echo read stdin > calc/note\n")
    (bin_dir / "claude").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score("http://127.0.0.1:9").replace("timeout = 120", "timeout = 20")
                       .replace(f'api_key_env = "{KEY_ENV}"\n', ""))
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=40)
    assert run.state == "review" and run.changed_paths == ["calc/note"], (run.state, run.message)


def test_claude_edits_through_its_own_edit_tool_with_the_key_from_api_key_env(tmp_path: Path, machine: Machine,
                                                                              server: FakeAnthropic) -> None:
    repo = buggy_repo(tmp_path / "repo")
    stats = str(repo / "calc" / "stats.py")
    server.script(tool_use(("Read", {"file_path": stats})), tool_use(("Edit", {"file_path": stats, **EDIT})),
                  text("mean() now divides by len(values)."))
    environ = {**os.environ, **machine.env()}
    invocation = cli_invocation(claude_agent(server.url), TASK, environ)
    assert invocation.env["ANTHROPIC_API_KEY"] == KEY and invocation.secret_names == ("ANTHROPIC_API_KEY",)
    done = subprocess.run(invocation.argv, cwd=repo, env={**environ, **invocation.env}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=90, check=False)
    output = f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0 and done.stdout.strip() == "mean() now divides by len(values).", output
    assert (repo / "calc" / "stats.py").read_text() == FIXED, output

    # Three streamed requests to the Messages API, each with the key; the task first, then each tool's result.
    assert server.calls == ["POST /v1/messages"] * 3, server.calls
    assert all(r["stream"] for r in server.requests) and {h["x-api-key"] for h in server.headers} == {KEY}
    assert TASK in texts(server.requests[0])
    assert {"Edit", "Write", "Read"} <= {tool["name"] for tool in server.requests[0]["tools"]}
    read, edited = tool_results(server.requests[1])[-1], tool_results(server.requests[2])[-1]
    assert not read.get("is_error") and "len(values) - 1" in json.dumps(read), read
    assert not edited.get("is_error") and "updated successfully" in json.dumps(edited), edited
    assert git(repo, "diff", "--name-only").splitlines() == ["calc/stats.py"]
    assert not outside_requests(machine), f"Claude Code reached outside: {machine.proxy.requests}"


def test_a_bad_key_ends_claude_with_its_own_words(tmp_path: Path, machine: Machine, server: FakeAnthropic) -> None:
    # Claude Code retries a 401 (ten times over about three minutes, silently); CLAUDE_CODE_MAX_RETRIES
    # shortens that here. Then it exits 1 and says why.
    repo = buggy_repo(tmp_path / "repo")
    server.default = status(401)
    environ = {**os.environ, **machine.env(), "CLAUDE_CODE_MAX_RETRIES": "0"}
    invocation = cli_invocation(claude_agent(server.url), TASK, environ)
    done = subprocess.run(invocation.argv, cwd=repo, env={**environ, **invocation.env}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=90, check=False)
    assert done.returncode == 1 and done.stdout.strip() == "Invalid API key · Fix external API key", done
    assert len(server.requests) == 1 and (repo / "calc" / "stats.py").read_text() == BUGGY


# --------------------------------------------------------------------------- through the fleet


def fleet_score(url: str, env: tuple[str, ...] = ()) -> str:
    return (
        f'[[agents]]\nname = "claude"\nkind = "cli"\npreset = "claude"\napi_base = "{url}"\n'
        f'api_key_env = "{KEY_ENV}"\ntimeout = 120\nenv = {json.dumps(list(env))}\n\n'
        f'[[specs]]\nid = "fix-mean"\nintent = "{TASK}"\nallow = ["calc/**"]\n'
        "verify = [\"grep -qF 'return sum(values) / len(values)' calc/stats.py\"]\n"
    )


def output_lines(fleet, run_id: str) -> list[str]:
    return [event["text"] for event in fleet.store.read_events(run_id)[0] if event.get("type") == "output"]


def test_a_claude_run_reaches_review_with_its_edit_and_a_redirect_continues_its_session(
        tmp_path: Path, machine: Machine, server: FakeAnthropic, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    machine.enter(monkeypatch)
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url))
    # Relative paths: the worktree's is not known before the spawn, and Claude Code resolves them in it.
    server.script(tool_use(("Edit", {"file_path": "calc/stats.py", **EDIT}), content="Fixing the divisor."),
                  text("Fixed: mean() divides by len(values)."))
    began = time.monotonic()
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=90)
    took = time.monotonic() - began
    lines = output_lines(fleet, run.id)
    assert run.state == "review", f"{run.state}: {run.message}\n{lines}"
    assert (run.files_changed, run.changed_paths) == (1, ["calc/stats.py"]), run.changed_paths
    assert all(g.status == "passed" for g in run.gates.values()), run.gates
    diff = fleet.diff(run)
    assert "-    return sum(values) / (len(values) - 1)" in diff and "+    return sum(values) / len(values)" in diff
    assert (repo / "calc" / "stats.py").read_text() == BUGGY  # the user's checkout is untouched until accept
    assert "Fixed: mean() divides by len(values)." in lines
    assert not any(STDIN_WARNING in line for line in lines), lines  # stdin is /dev/null: no 3 s wait
    assert len(server.requests) == 2 and TASK in "\n".join(texts(server.requests[0]))
    assert not tool_results(server.requests[1])[-1].get("is_error"), server.requests[1]["messages"][-1]
    print(f"\nclaude run: spawn to settled review {took:.2f}s")

    # A redirect continues Claude Code's own conversation (--continue): the server gets the earlier turns.
    server.script(tool_use(("Write", {"file_path": "calc/__init__.py", "content": INIT})), text("Added it."))
    fleet.redirect(run.id, AGAIN)
    run = wait_for(lambda: (r := fleet.get(run.id)).redirects and r.state == "review" and r.files_changed == 2 and r,
                   90, message=lambda: f"the redirected turn to reach review: {fleet.get(run.id).state} "
                                       f"{fleet.get(run.id).message} {output_lines(fleet, run.id)[-5:]}")
    run = wait_settled(fleet, run.id, timeout=60)
    assert run.state == "review" and sorted(run.changed_paths) == ["calc/__init__.py", "calc/stats.py"], run.message
    continued = server.requests[2]
    sent = "\n".join(texts(continued))
    assert TASK in sent and "updated successfully" in sent and AGAIN in sent, sent[-2000:]
    assert [m["role"] for m in continued["messages"]].count("assistant") >= 2  # the first turn's answers
    assert (Path(run.worktree) / "calc" / "__init__.py").read_text() == INIT
    assert len(server.requests) == 4 and {h["x-api-key"] for h in server.headers} == {KEY}

    written = written_files(fleet)
    assert written and not files_holding(written, KEY)
    assert not outside_requests(machine), f"Claude Code reached outside: {machine.proxy.requests}"


def test_a_claude_run_refused_by_the_server_fails_with_claudes_message(
        tmp_path: Path, machine: Machine, server: FakeAnthropic, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    machine.enter(monkeypatch)
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "0")  # declared by the score: else ~3 minutes of retries
    repo = buggy_repo(tmp_path / "repo")
    fleet = make_fleet(repo, fleet_score(server.url, env=("CLAUDE_CODE_MAX_RETRIES",)))
    server.default = status(401)
    run = wait_settled(fleet, fleet.spawn("fix-mean")[0].id, timeout=90)
    assert run.state == "failed" and run.exit_code == 1, run.state
    assert "Invalid API key · Fix external API key" in output_lines(fleet, run.id)
    assert run.message.startswith("Invalid API key · Fix external API key"), run.message
    assert len(server.requests) == 1


# --------------------------------------------------------------------------- as a reviewer


AUTHOR = "printf 'def answer(x):\\n    return 42\\n' > src/app.py"


def review_score(url: str) -> str:
    return ('[review]\nagents = ["critic"]\n'
            f'[[agents]]\nname = "author"\nkind = "shell"\ncommand = "{AUTHOR}"\n'
            f'[[agents]]\nname = "critic"\nkind = "cli"\npreset = "claude"\nrole = "review"\napi_base = "{url}"\n'
            f'api_key_env = "{KEY_ENV}"\ntimeout = 120\n'
            '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n'
            'verify = ["grep -q 42 src/app.py"]\n')


def verdict(*findings: dict) -> str:
    return json.dumps({"findings": list(findings), "explanation": "answer() ignores x."})


def test_claude_reviews_in_plan_mode_and_the_gate_gets_its_verdict(
        tmp_path: Path, machine: Machine, server: FakeAnthropic, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    machine.enter(monkeypatch)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("def answer(x):\n    return x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    fleet = make_fleet(repo, review_score(server.url))
    finding = {"title": "answer() ignores its input", "body": "It returns a constant.", "priority": "P1",
               "confidence": 0.9, "path": "src/app.py", "line_start": 2, "line_end": 2}
    # Claude Code reads the file first (Read is allowed in plan mode), then answers with the findings.
    server.script(tool_use(("Read", {"file_path": "src/app.py"})), text(verdict(finding)))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=120)
    gate = run.gates["review-critic"]
    assert run.state == "review" and (gate.kind, gate.status, gate.verdict) == ("review", "failed", CHANGES_REQUESTED), \
        (gate.status, gate.summary)
    assert [(f["priority"], f["path"], f["line_start"], f["source"]) for f in gate.findings] == [
        ("P1", "src/app.py", 2, "review:critic")]
    assert gate.details["explanation"] == "answer() ignores x."

    asked = server.requests[0]
    assert "Make answer() return 42" in "\n".join(texts(asked)) and "+    return 42" in "\n".join(texts(asked))
    assert "return 42" in json.dumps(tool_results(server.requests[1]))  # Read worked, on the candidate
    assert {h["x-api-key"] for h in server.headers} == {KEY}
    invocation = review_invocation({"name": "critic", "kind": "cli", "preset": "claude"}, "p", {})
    assert invocation.argv[:6] == ("claude", "-p", "--permission-mode", "plan", "--output-format", "json")
    # No session is kept, so an author's --continue in the same worktree never resumes the review.
    assert not [p for p in fleet.repo.jails_dir.rglob("*.jsonl") if ".review" in str(p)]
    assert (Path(run.worktree) / "src" / "app.py").read_text() == "def answer(x):\n    return 42\n"
    assert not files_holding(written_files(fleet), KEY)
    assert not outside_requests(machine), f"Claude Code reached outside: {machine.proxy.requests}"
