"""cli agents (coding-agent CLIs and custom commands) run like any agent, and say when they wait."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from tests.core.helpers import output_lines, wait_for, wait_settled

SPEC = '[[specs]]\nid = "notes"\nintent = "Write the notes"\nallow = ["notes/**"]\nverify = ["test -s notes/prompt.txt"]\n'


def agent(name: str, **settings: str) -> str:
    body = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())  # JSON strings are TOML
    return f'[[agents]]\nname = "{name}"\nkind = "cli"\n{body}\n'


def test_a_custom_command_gets_the_prompt_and_its_key_is_never_logged(repo: Path, make_fleet,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTES_KEY", "sk-notes-0123456789")
    fleet = make_fleet(repo, agent("writer", command="mkdir -p notes && printf '%s\\n' {prompt} > notes/prompt.txt"
                                   " && echo key is $NOTES_KEY", api_key_env="NOTES_KEY") + SPEC)
    run = wait_settled(fleet, fleet.spawn("notes")[0].id)
    assert run.state == "review" and run.changed_paths == ["notes/prompt.txt"], run.message
    prompt = (Path(run.worktree) / "notes" / "prompt.txt").read_text()
    assert prompt.startswith("Task (spec notes): Write the notes") and "notes/**" in prompt
    assert "test -s notes/prompt.txt" in prompt
    assert "key is [redacted NOTES_KEY]" in output_lines(fleet, run.id)
    assert all("sk-notes-0123456789" not in p.read_text(errors="replace")
               for p in fleet.repo.state_dir.rglob("*") if p.is_file())


def test_an_agent_that_asks_a_question_is_waiting(repo: Path, make_fleet) -> None:
    fleet = make_fleet(repo, agent("asker", command="echo working; printf 'Apply these changes? (y/n) '; read answer;"
                                   " echo got $answer") + SPEC)
    run = fleet.spawn("notes")[0]
    waiting = wait_for(lambda: (r := fleet.get(run.id)).state == "waiting" and r, 20,
                       message="the run to be waiting")
    assert waiting.activity == {"state": "waiting", "reason": "asks: Apply these changes? (y/n)"}
    assert waiting.message == "asks: Apply these changes? (y/n)"
    stopped = fleet.stop(run.id)
    assert stopped.state == "stopped"


def test_a_missing_cli_says_how_to_install_it(repo: Path, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no claude here
    fleet = make_fleet(repo, agent("claude", preset="claude") + SPEC)
    run = wait_settled(fleet, fleet.spawn("notes")[0].id)
    assert run.state == "failed"
    assert run.message == ("Claude Code is not installed here (claude is not on PATH): "
                           "npm install -g @anthropic-ai/claude-code")


def test_a_missing_key_variable_fails_the_run_saying_which(repo: Path, make_fleet,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_KEY", raising=False)
    fleet = make_fleet(repo, agent("writer", command="true", api_key_env="UNSET_KEY") + SPEC)
    run = wait_settled(fleet, fleet.spawn("notes")[0].id)
    assert run.state == "failed" and "UNSET_KEY" in run.message, run.message


def test_redirect_starts_a_custom_command_again_with_what_was_done(repo: Path, make_fleet) -> None:
    fleet: Fleet = make_fleet(repo, agent("writer", command="mkdir -p notes && printf '%s\\n' {prompt} >>"
                                          " notes/prompt.txt && echo wrote") + SPEC)
    run = wait_settled(fleet, fleet.spawn("notes")[0].id)
    fleet.redirect(run.id, "Add a title line.")
    wait_for(lambda: len(fleet.get(run.id).redirects) == 1 and fleet.get(run.id).state == "review"
             and "Add a title line." in (Path(run.worktree) / "notes" / "prompt.txt").read_text(), 30,
             message="the redirected turn to finish")
    second = (Path(run.worktree) / "notes" / "prompt.txt").read_text().split("Task (spec notes)")[-1]
    assert "1 file(s) changed" in second and "notes/prompt.txt" in second and "wrote" in second


def fake_cli(tmp_path: Path, name: str, script: str) -> Path:
    """An executable called name in a directory of its own: a stand-in for a coding-agent CLI."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / name
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)
    return bin_dir


def test_a_cli_that_exits_0_after_a_refused_permission_has_failed(repo: Path, make_fleet, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = fake_cli(tmp_path, "opencode", "mkdir -p notes && echo started > notes/prompt.txt\n"
                       "echo 'Error: The user rejected permission to use this specific tool call.'\nexit 0\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    fleet = make_fleet(repo, agent("oc", preset="opencode") + SPEC)
    run = wait_settled(fleet, fleet.spawn("notes")[0].id)
    assert run.state == "failed" and run.exit_code == 0
    assert run.message == ("OpenCode reported a failure though it exited 0: Error: The user rejected permission to "
                           "use this specific tool call.")
    assert run.changed_paths == ["notes/prompt.txt"]  # what it did is kept, for a redirect


def test_aider_exiting_0_after_an_authentication_error_has_failed(repo: Path, make_fleet, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = fake_cli(tmp_path, "aider", "echo 'litellm.AuthenticationError: AnthropicException - invalid x-api-key'\n"
                       "exit 0\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    fleet = make_fleet(repo, agent("ai", preset="aider", model="anthropic/claude-sonnet-4-5") + SPEC)
    run = wait_settled(fleet, fleet.spawn("notes")[0].id)
    assert run.state == "failed" and "AuthenticationError" in run.message


def test_a_cli_stuck_on_a_browser_sign_in_shows_as_stalled_with_its_words(repo: Path, make_fleet, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = fake_cli(tmp_path, "aider", "echo 'Please open https://openrouter.ai/auth to sign in.'\n"
                       "echo 'Waiting up to 5 minutes for you to finish in the browser...'\nsleep 60\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    fleet = make_fleet(repo, agent("ai", preset="aider", model="openrouter/anthropic/claude-sonnet-4") + SPEC)
    run = fleet.spawn("notes")[0]
    stalled = wait_for(lambda: (r := fleet.get(run.id)).activity and r.activity["state"] == "stalled" and r, 20,
                       message="the run to show as stalled")
    assert stalled.state == "working"
    assert stalled.activity["reason"] == "Waiting up to 5 minutes for you to finish in the browser..."
    fleet.stop(run.id)
