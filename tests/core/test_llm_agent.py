"""The built-in llm agent, end to end: spawned like any run, talking to a fake model server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from tests.core.helpers import FAKE_KEY, output_lines, processes_with, wait_for, wait_settled
from tests.harness.fake_openai import FakeOpenAI, cut_stream, hang, malformed, status, text, tool_calls

KEY = FAKE_KEY


def score(url: str, **extra: object) -> str:
    settings = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in extra.items())
    return (f'[[agents]]\nname = "coder"\nkind = "llm"\nmodel = "openai/fake-model"\napi_base = "{url}"\n'
            f'api_key_env = "FAKE_PROVIDER_KEY"\n{settings}\n'
            '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n'
            'verify = ["grep -q 42 src/app.py"]\n')


def files_orchestra_wrote(fleet: Fleet) -> list[Path]:
    return [p for p in fleet.repo.state_dir.rglob("*") if p.is_file()]


def test_llm_agent_reads_edits_and_finishes(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    (repo / "AGENTS.md").write_text("Keep functions tiny.\n")
    subprocess.run(["git", "add", "AGENTS.md"], cwd=repo, check=True)
    fleet = make_fleet(repo, score(server.url))  # commits AGENTS.md with the score
    server.script(
        tool_calls(("read_file", {"path": "src/app.py"})),
        tool_calls(("edit_file", {"path": "src/app.py", "search": "return 41", "replace": "return 42"}),
                   ("write_file", {"path": "README.md", "content": "sneaky\n"})),
        tool_calls(("run_command", {"command": "echo key=${FAKE_PROVIDER_KEY:-hidden}"})),
        text("I changed answer() to return 42.\nAll done."),
    )
    run = fleet.spawn("fix")[0]
    run = wait_settled(fleet, run.id, timeout=60)
    assert run.state == "review", run.message
    assert (run.files_changed, run.changed_paths) == (1, ["src/app.py"])
    assert all(g.status == "passed" for g in run.gates.values()), run.gates
    assert run.usage == {"model": "openai/fake-model", "prompt_tokens": 40, "completion_tokens": 20,
                         "cost": None, "turns": 4}
    lines = output_lines(fleet, run.id)
    assert "→ read_file src/app.py" in lines and "→ edit_file src/app.py search=return 41 replace=return 42" in lines
    assert any(line.startswith("→ write_file refused: README.md: outside the spec's allowed paths") for line in lines)
    assert "  key=hidden" in lines  # the provider key never reaches the commands the model runs
    assert lines[-4:-2] == ["I changed answer() to return 42.", "All done."] or \
        "All done." in lines, lines
    # The model saw the spec, the repository's instructions, every tool result and the refusal.
    system = server.requests[0]["messages"][0]["content"]
    assert "Make answer() return 42" in server.requests[0]["messages"][1]["content"]
    assert "src/**" in system and "grep -q 42 src/app.py" in system and "Keep functions tiny." in system
    tool_results = [m for m in server.requests[2]["messages"] if m["role"] == "tool"]
    assert tool_results[-1]["content"].startswith("error: README.md: outside the spec's allowed paths")
    assert all(h.get("authorization") == f"Bearer {KEY}" for h in server.headers)
    fleet.accept(run.id)
    entry = fleet.ledger.last()
    assert entry["usage"] == {"model": "openai/fake-model", "prompt_tokens": 40, "completion_tokens": 20,
                              "cost": None, "turns": 4}
    for path in files_orchestra_wrote(fleet) + [fleet.repo.ledger_path]:
        assert KEY not in path.read_text(errors="replace"), path


def test_redirect_continues_the_conversation(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(text("Nothing to do, I think."))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.state == "review"
    server.script(tool_calls(("edit_file", {"path": "src/app.py", "search": "41", "replace": "42"})),
                  text("Now it returns 42."))
    fleet.redirect(run.id, "You did not change anything; make the edit.")
    server.wait_for_requests(3, timeout=60)
    run = wait_settled(fleet, run.id, timeout=60)
    assert run.state == "review" and run.changed_paths == ["src/app.py"], run.message
    continued = server.requests[1]["messages"]
    assert [m["role"] for m in continued] == ["system", "user", "assistant", "user"]
    assert continued[2]["content"] == "Nothing to do, I think."
    assert "You did not change anything; make the edit." in continued[3]["content"]
    assert run.usage["turns"] == 3


@pytest.mark.parametrize("fault", [status(429), status(500), malformed(), cut_stream(2)],
                         ids=["rate-limit", "server-error", "malformed", "cut-stream"])
def test_a_passing_fault_is_retried_visibly(repo: Path, make_fleet, server: FakeOpenAI, fault) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(fault, tool_calls(("edit_file", {"path": "src/app.py", "search": "41", "replace": "42"})),
                  text("Done."))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.state == "review", run.message
    assert any("retrying in" in line for line in output_lines(fleet, run.id))


def test_a_model_that_keeps_failing_fails_the_run_and_keeps_the_work(repo: Path, make_fleet,
                                                                      server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url, request_timeout=1))
    server.script(tool_calls(("edit_file", {"path": "src/app.py", "search": "41", "replace": "42"})),
                  hang(5), status(503), status(500), status(500), status(500))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=90)
    assert run.state == "failed"
    assert "gave up after 5 attempts" in run.message and server.url in run.message, run.message
    assert run.changed_paths == ["src/app.py"]  # the edit made before the failure is kept, committed
    assert any("no answer within 1s" in line for line in output_lines(fleet, run.id))


def test_an_unreachable_model_says_where_it_looked(repo: Path, make_fleet, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_PROVIDER_KEY", KEY)
    monkeypatch.setenv("ORCHESTRA_LLM_RETRY_BASE", "0.01")
    fleet = make_fleet(repo, score("http://127.0.0.1:9/v1"))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=90)
    assert run.state == "failed" and "127.0.0.1:9" in run.message, run.message


def test_budget_stops_the_agent(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url, max_turns=2))
    server.script(*[tool_calls(("list_files", {})) for _ in range(5)])
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.state == "failed" and run.message == "stopped at its budget: 2 turns; redirect to continue"
    assert len(server.requests) == 2


def test_a_missing_key_variable_is_named(repo: Path, make_fleet, monkeypatch) -> None:
    monkeypatch.delenv("FAKE_PROVIDER_KEY", raising=False)
    fleet = make_fleet(repo, score("http://127.0.0.1:9/v1"))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.state == "failed" and "FAKE_PROVIDER_KEY" in run.message, run.message


def test_stopping_a_run_cancels_its_job_in_the_shared_host(repo: Path, make_fleet, server: FakeOpenAI,
                                                           llm_host_socket: Path) -> None:
    fleet = make_fleet(repo, score(server.url))
    server.script(tool_calls(("run_command", {"command": "sleep 31.25; echo never"})))
    run = fleet.spawn("fix")[0]
    wait_for(lambda: processes_with("sleep 31.25"), 60, message="the model's command to start")
    fleet.stop(run.id)
    wait_for(lambda: not processes_with("sleep 31.25"), 10, message="the command to be killed with its job")
    assert fleet.get(run.id).state == "stopped"
    # The host goes on serving: the next run works, and there is one host for every run and repository.
    server.script(text("Nothing to change."))
    second = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert second.state == "review", second.message
    hosts = processes_with(f"orchestra.llm.llm_host {llm_host_socket}")
    assert len(hosts) == 1, hosts


def test_token_and_cost_budgets_stop_the_agent(repo: Path, make_fleet, server: FakeOpenAI) -> None:
    fleet = make_fleet(repo, score(server.url, max_tokens=25))
    server.script(*[tool_calls(("list_files", {})) for _ in range(5)])  # 15 tokens a turn
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.state == "failed" and run.message.startswith("stopped at its budget: 30 tokens (max_tokens 25)")
    # A model litellm's offline price map knows is priced; the cost budget stops it.
    priced = score(server.url, max_cost=0.000001).replace("openai/fake-model", "openai/gpt-4o-mini")
    (repo / "orchestra.toml").write_text(priced)
    fleet = make_fleet(repo, priced)
    server.script(*[tool_calls(("list_files", {}), prompt_tokens=1000, completion_tokens=100) for _ in range(3)])
    run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
    assert run.usage["cost"] is not None and run.usage["cost"] > 0, run.usage
    assert run.state == "failed" and "max_cost $0.00" in run.message and run.usage["turns"] == 1, run.message
