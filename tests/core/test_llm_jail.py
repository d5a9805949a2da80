"""The built-in llm agent's tools run in the run's jail: its tool runner, not the llm host, touches the
worktree and runs the model's commands, with no provider key, contained by the sandbox, ended on stop."""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.core.jail import probe
from orchestra.llm.runner_process import RunnerProcess
from orchestra.llm.tool_protocol import CALL_PREFIX, JOB_VERSION, answer, decode, encode, refusal, request
from tests.core.helpers import output_lines, processes_with, wait_for, wait_settled
from tests.harness.fake_openai import FakeOpenAI, text, tool_calls

OPENAI_KEY = "sk-test-openai-7e11a1e5ecret"
AWS_SECRET = "aws-test-wJalrXUtnFEMI-K7MDENG"
SANDBOX = probe().works


def score(url: str, sandbox: str = "auto") -> str:
    """An llm agent with no api_key_env: its model's key is OPENAI_API_KEY, the openai provider's."""
    return (f'[orchestra]\nsandbox = "{sandbox}"\n\n'
            f'[[agents]]\nname = "coder"\nkind = "llm"\nmodel = "openai/fake-model"\napi_base = "{url}"\n\n'
            '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n')


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("ORCHESTRA_LLM_RETRY_BASE", "0.05")
    with FakeOpenAI() as fake:
        yield fake


def tool_results(server: FakeOpenAI) -> list[str]:
    """What each tool call returned, as the model was told (the last request holds them all)."""
    return [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        chain.append(pid)
    return chain


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def host_pid(llm_host_socket: Path) -> int:
    hosts = processes_with(f"orchestra.llm.llm_host {llm_host_socket}")
    assert len(hosts) == 1, hosts
    return hosts[0][0]


def test_the_models_commands_see_no_key_and_the_model_still_gets_it(repo: Path, make_fleet, server: FakeOpenAI,
                                                                     llm_host_socket: Path) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(tool_calls(("run_command", {"command": "env; echo HOME=$HOME"})), text("Looked around."))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.state == "review", run.message
    env = tool_results(server)[0]
    assert env.startswith("exit status 0") and "ORCHESTRA_TASK=" in env, env
    for secret in (OPENAI_KEY, AWS_SECRET, "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", str(llm_host_socket),
                   "ORCHESTRA_LLM_"):
        assert secret not in env, secret
    assert f"HOME={os.environ['HOME']}\n" not in env  # a private home, not the user's
    assert all(h.get("authorization") == f"Bearer {OPENAI_KEY}" for h in server.headers)  # the model had it


@pytest.mark.skipif(not SANDBOX, reason="needs bubblewrap: ./dev test installs it")
def test_the_models_writes_outside_the_worktree_are_contained(repo: Path, make_fleet, server: FakeOpenAI,
                                                               isolated_home: Path) -> None:
    (isolated_home / ".bashrc").write_text("original\n")
    (isolated_home / ".ssh").mkdir()
    (isolated_home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    fleet = make_fleet(repo, score(server.url))
    attempts = {"checkout": f"echo pwned >> {repo}/README.md", "bashrc": f"echo pwned >> {isolated_home}/.bashrc",
                "own-bashrc": "echo pwned >> ~/.bashrc", "ssh": f"cat {isolated_home}/.ssh/id_ed25519",
                "network": "python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 53), 2)'"}
    server.script(*[tool_calls(("run_command", {"command": command})) for command in attempts.values()],
                  tool_calls(("edit_file", {"path": "src/app.py", "search": "41", "replace": "42"})), text("Done."))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.state == "review", run.message
    assert run.sandbox == {"sandboxed": True, "network": False, "why_not": None}
    results = dict(zip(attempts, tool_results(server), strict=False))
    assert "PRIVATE KEY" not in results["ssh"] and not results["ssh"].startswith("exit status 0"), results
    assert not results["network"].startswith("exit status 0"), results
    # Writes to the checkout and the home land in the sandbox's throwaway places; nothing outside changed.
    assert (repo / "README.md").read_text() == "# demo\n"
    assert (isolated_home / ".bashrc").read_text() == "original\n"
    assert run.changed_paths == ["src/app.py"]  # the run's own work still lands


def test_the_host_never_touches_the_worktree(repo: Path, make_fleet, server: FakeOpenAI,
                                             llm_host_socket: Path) -> None:
    """A client of our own answers the host's tool calls without doing them: the file stays as it was, and
    the model is told what the client said."""
    fleet = make_fleet(repo, score(server.url))
    server.script(text("Nothing yet."))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    worktree = Path(run.worktree)
    before = (worktree / "src" / "app.py").read_text()
    server.script(tool_calls(("edit_file", {"path": "src/app.py", "search": "41", "replace": "42"})),
                  text("Edited."))
    requests = []
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(llm_host_socket))
        job = {"v": JOB_VERSION, "state_dir": str(fleet.repo.state_dir), "run_id": run.id, "api_key": OPENAI_KEY,
               "redirect": "Make the edit.", "retry_base": 0.05}
        client.sendall((json.dumps(job) + "\n").encode())
        host = host_pid(llm_host_socket)
        assert os.readlink(f"/proc/{host}/cwd") == "/"
        with client.makefile("rb") as lines:
            for line in lines:
                if line.startswith(b"\x1eexit "):
                    break
                if line.startswith(CALL_PREFIX.encode()):
                    request = decode(line[len(CALL_PREFIX):])
                    requests.append(request)
                    open_files = [os.readlink(f"/proc/{host}/fd/{fd}") for fd in os.listdir(f"/proc/{host}/fd")]
                    assert not [path for path in open_files if path.startswith(str(worktree))], open_files
                    client.sendall(encode(answer(request["id"], f"done by the test's client ({request['op']})")))
    assert [r["op"] for r in requests] == ["open", "tool"]  # a continued conversation reads no instructions
    assert requests[0]["worktree"] == run.worktree and requests[0]["allow"] == ["src/**"]
    assert requests[1]["name"] == "edit_file" and requests[1]["arguments"]["replace"] == "42"
    assert tool_results(server)[-1] == "done by the test's client (tool)"
    assert (worktree / "src" / "app.py").read_text() == before


@pytest.mark.parametrize("sandbox", ["auto", "off"])
def test_stopping_the_run_ends_its_tool_runner_and_command(repo: Path, make_fleet, server: FakeOpenAI,
                                                           llm_host_socket: Path, sandbox: str) -> None:
    fleet: Fleet = make_fleet(repo, score(server.url, sandbox))
    marker = f"31.{uuid.uuid4().int % 10**6:06d}"
    server.script(tool_calls(("run_command", {"command": f"sleep {marker}; echo never"})))
    run = fleet.spawn("fix")[0]
    sleeps = wait_for(lambda: processes_with(f"sleep {marker}"), 60, message="the model's command to start")
    chain = ancestors(sleeps[0][0])
    runners = [pid for pid in chain if "orchestra.llm.tool_runner" in command_of(pid)]
    assert runners and host_pid(llm_host_socket) not in chain, [command_of(pid) for pid in chain]
    assert any("orchestra.llm.llm_client" in command_of(pid) for pid in chain)  # the client owns its runner
    if sandbox == "auto" and SANDBOX:
        assert any(command_of(pid).startswith(("bwrap", "/usr/bin/bwrap")) for pid in chain)
    fleet.stop(run.id)
    wait_for(lambda: not processes_with(f"sleep {marker}"), 10, message="the command to end with the run")
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") and command_of(pid) for pid in runners), 10,
             message="the tool runner to end with the run")
    assert fleet.get(run.id).state == "stopped"
    assert "never" not in output_lines(fleet, run.id)


def test_a_runner_the_model_killed_is_started_again(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(tool_calls(("run_command", {"command": "kill -9 $PPID"})),
                  tool_calls(("edit_file", {"path": "src/app.py", "search": "41", "replace": "42"})), text("Done."))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.state == "review", run.message
    killed, edited = tool_results(server)
    assert killed.startswith("error: the tool runner ended (exit status"), killed
    assert edited.startswith("edited src/app.py") and run.changed_paths == ["src/app.py"], edited


def test_the_tool_runner_answers_each_request_and_ends_its_command_with_its_stdin(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("return 41\n")
    (tmp_path / "AGENTS.md").write_text("Be brief.\n")
    runner = RunnerProcess([sys.executable, "-m", "orchestra.llm.tool_runner"], dict(os.environ))
    runner.start()
    ask = runner.ask
    assert ask(request(1, "tool", name="list_files", arguments={})) == \
        refusal(1, "the tool runner was not opened on a worktree")
    assert ask(request(2, "open", worktree=str(tmp_path), allow=["src/**"], deny=[]))["ok"]
    assert ask(request(3, "instructions")) == answer(3, "--- AGENTS.md ---\nBe brief.")
    assert ask(request(4, "tool", name="edit_file", arguments={"path": "src/app.py", "search": "41", "replace": "42"}))
    assert (tmp_path / "src" / "app.py").read_text() == "return 42\n"
    assert ask(request(5, "tool", name="write_file", arguments={"path": "x.txt", "content": ""}))["error"] \
        .startswith("x.txt: outside the spec's allowed paths")
    assert ask(request(6, "tool", name="read_file", arguments=["x"])) == refusal(6, "the arguments must be a JSON object")
    assert ask(request(7, "format_disk"))["error"] == "unknown request 'format_disk'"
    marker = f"32.{uuid.uuid4().int % 10**6:06d}"
    assert runner.proc is not None and runner.proc.stdin is not None
    runner.proc.stdin.write(encode(request(8, "tool", name="run_command", arguments={"command": f"sleep {marker}"})))
    runner.proc.stdin.flush()
    wait_for(lambda: processes_with(f"sleep {marker}"), 10, message="the command to start")
    runner.proc.stdin.close()  # the client went away
    assert runner.proc.wait(timeout=10) == 0
    wait_for(lambda: not processes_with(f"sleep {marker}"), 10, message="the command to end with the runner")


def test_the_conversation_kept_for_a_redirect_holds_no_secret(repo: Path, make_fleet, server: FakeOpenAI,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A declared secret the model's command prints reaches the model, never the run's files (0600)."""
    fleet = make_fleet(repo, score(server.url).replace('model = "openai/fake-model"',
                                                       'model = "openai/fake-model"\nenv = ["MY_SERVICE_TOKEN"]'))
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-declared-for-the-agent-0042")
    server.script(tool_calls(("run_command", {"command": "echo $MY_SERVICE_TOKEN"})), text("Printed it."))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert "tok-declared-for-the-agent-0042" in tool_results(server)[0]  # declared: the agent may use it
    conversation = fleet.store.run_dir(run.id) / "conversation.json"
    text_kept = conversation.read_text()
    assert "tok-declared-for-the-agent-0042" not in text_kept and "[redacted MY_SERVICE_TOKEN]" in text_kept
    assert OPENAI_KEY not in text_kept and conversation.stat().st_mode & 0o777 == 0o600
