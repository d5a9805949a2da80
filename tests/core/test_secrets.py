"""Secrets never reach a file orchestra writes, and a run's files are private to their owner."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from orchestra.core.base.redact import Redactor
from orchestra.core.gates.commands import CappedLog
from orchestra.core.onboarding.doctor import WELL_KNOWN_KEYS
from orchestra.core.runs.run import Run
from orchestra.core.supervise.secrets import run_redactor, secret_names
from tests.core.helpers import output_lines, score_text, wait_settled

SERVICE_TOKEN = "svc-tok-3f9a1c77e2b54d08"
OPENAI_KEY = "sk-test-openai-0123456789abcdef"
PRINT_SECRETS = 'env; echo "token=$MY_SERVICE_TOKEN"; echo "openai=$OPENAI_API_KEY"'


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_declared_token_an_agent_and_a_gate_print_is_in_no_file_orchestra_writes(
        repo: Path, make_fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", SERVICE_TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    agent = {"command": f"{PRINT_SECRETS}; mkdir -p notes && echo done > notes/done.txt",
             "env": ["MY_SERVICE_TOKEN", "OPENAI_API_KEY"]}
    spec = {"id": "notes", "intent": "Write the notes", "allow": ["notes/**"], "env": ["MY_SERVICE_TOKEN"],
            "verify": [{"name": "leak", "command": PRINT_SECRETS}]}
    fleet = make_fleet(repo, score_text({"leaker": agent}, [spec]))
    run = wait_settled(fleet, fleet.spawn("notes")[0].id)
    assert run.state == "review" and run.gates["leak"].status == "passed", run.message

    assert "token=[redacted MY_SERVICE_TOKEN]" in output_lines(fleet, run.id)
    assert "openai=[redacted OPENAI_API_KEY]" in output_lines(fleet, run.id)
    assert "token=[redacted MY_SERVICE_TOKEN]" in run.gates["leak"].output_tail
    gate_log = (fleet.store.run_dir(run.id) / "gates" / "leak.log").read_text()
    assert "MY_SERVICE_TOKEN=[redacted MY_SERVICE_TOKEN]" in gate_log
    written = files_under(fleet.repo.state_dir)
    assert len(written) > 5
    for path in written:
        content = path.read_bytes()
        assert SERVICE_TOKEN.encode() not in content and OPENAI_KEY.encode() not in content, path


def test_a_runs_directories_are_0700_and_its_files_0600(repo: Path, make_fleet) -> None:
    spec = {"id": "notes", "intent": "Write the notes", "allow": ["notes/**"], "verify": ["echo checked"]}
    fleet = make_fleet(repo, score_text({"writer": "mkdir -p notes && echo hi > notes/hi.txt"}, [spec]))
    run = wait_settled(fleet, fleet.spawn("notes")[0].id)
    assert run.state == "review", run.message
    run_dir = fleet.store.run_dir(run.id)
    for directory in (fleet.repo.state_dir, fleet.store.runs_dir, run_dir, run_dir / "gates"):
        assert mode(directory) == 0o700, directory
    names = {path.relative_to(run_dir).as_posix() for path in files_under(run_dir)}
    assert {"run.json", "events.jsonl", "lock", "supervisor.log", "gates/echo.log"} <= names, names
    assert {path.name: oct(mode(path)) for path in files_under(run_dir)} == {
        path.name: oct(0o600) for path in files_under(run_dir)}


def test_an_existing_state_dir_becomes_private_when_a_run_is_made(repo: Path, make_fleet) -> None:
    fleet = make_fleet(repo, score_text({"writer": "true"}, [{"id": "notes", "intent": "x"}]))
    fleet.repo.state_dir.mkdir(mode=0o755, exist_ok=True)
    fleet.repo.state_dir.chmod(0o755)
    wait_settled(fleet, fleet.spawn("notes")[0].id)
    assert mode(fleet.repo.state_dir) == 0o700


def test_a_secret_split_across_gate_log_chunks_is_still_redacted() -> None:
    secret = "ghp_0123456789abcdefABCDEF"
    redactor = Redactor({"GITHUB_TOKEN": secret})
    output = f"start {secret} middle {secret}{secret}\nend {secret[:5]}".encode()
    for size in (1, 3, 7, len(secret) - 1, len(secret), 64):
        file = io.BytesIO()
        log = CappedLog(file, redact=redactor)  # type: ignore[arg-type]
        for start in range(0, len(output), size):
            log.write(output[start:start + size])
        log.finish([])
        assert file.getvalue() == (b"start [redacted GITHUB_TOKEN] middle [redacted GITHUB_TOKEN]"
                                   b"[redacted GITHUB_TOKEN]\nend ghp_0"), size


def test_a_cut_gate_log_redacts_its_last_lines_too() -> None:
    secret = "ghp_0123456789abcdefABCDEF"
    file = io.BytesIO()
    log = CappedLog(file, limit=10, redact=Redactor({"GH_TOKEN": secret}))  # type: ignore[arg-type]
    log.write(f"0123456789 {secret}\n".encode())
    log.finish([f"last {secret}"])
    assert secret.encode() not in file.getvalue() and b"last [redacted GH_TOKEN]" in file.getvalue()


def test_the_longer_of_two_overlapping_secrets_wins_and_short_values_are_not_secrets() -> None:
    redact = Redactor({"SHORT_TOKEN": "abc123", "A_KEY": "key-aaaaaaaa", "B_KEY": "key-aaaaaaaa-bbbb"})
    assert redact("x key-aaaaaaaa-bbbb y key-aaaaaaaa z abc123") == (
        "x [redacted B_KEY] y [redacted A_KEY] z abc123")
    assert redact.deep({"a": ["key-aaaaaaaa", 3, None]}) == {"a": ["[redacted A_KEY]", 3, None]}


def test_a_secret_is_redacted_in_the_forms_a_tool_may_print_it_in() -> None:
    secret = 'pa"ss/word+1234'
    redact = Redactor({"DB_PASSWORD": secret})
    for printed in (secret, 'pa\\"ss/word+1234', "pa%22ss%2Fword%2B1234"):
        assert redact(f"<{printed}>") == "<[redacted DB_PASSWORD]>", printed


def run_with(agent_config: dict, spec_config: dict | None = None) -> Run:
    return Run(id="r1", agent="a", spec=None, task="t", branch="b", worktree="/w", base="x", target="main",
               agent_config=agent_config, spec_config=spec_config)


def test_which_variables_are_secrets() -> None:
    environ = {name: f"value-of-{name}" for name in (
        *WELL_KNOWN_KEYS, "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "MY_KEY_FILE",
        "DEPLOY_PAT", "SERVICE_CREDS", "GNOME_KEYRING_CONTROL", "HOME", "SERVICE_URL")}
    run = run_with({"kind": "cli", "env": ["MY_KEY_FILE", "SERVICE_URL"], "api_key_env": "SERVICE_CREDS"},
                   {"env": ["DEPLOY_PAT"]})
    names = secret_names(run, environ)
    assert set(WELL_KNOWN_KEYS) | {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GITHUB_TOKEN", "GH_TOKEN",
                                   "MY_KEY_FILE", "DEPLOY_PAT", "SERVICE_CREDS"} <= names
    assert not names & {"GNOME_KEYRING_CONTROL", "HOME", "SERVICE_URL"}
    redact = run_redactor(run, environ)
    assert redact("value-of-GH_TOKEN value-of-SERVICE_URL") == "[redacted GH_TOKEN] value-of-SERVICE_URL"
