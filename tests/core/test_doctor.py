"""orchestra doctor: tools, agent CLIs and provider keys, judged with a fake environment and PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.onboarding.doctor import WELL_KNOWN_KEYS, Finding, diagnose, is_local_model
from orchestra.core.agents.presets import PRESET_TABLE
from orchestra.core.score import Agent, Score

SECRET = "sk-live-0123456789abcdef"


def fake_which(*installed: str) -> Callable[[str], str | None]:
    return lambda name: f"/usr/bin/{name}" if name in installed else None


def by_subject(findings: Iterable[Finding]) -> dict[str, Finding]:
    return {finding.subject: finding for finding in findings}


def score(*agents: Agent) -> Score:
    return Score(path=Path("/repo/orchestra.toml"), agents=agents)


def test_without_a_score_it_checks_every_tool_preset_and_well_known_key() -> None:
    found = by_subject(diagnose(None, {"OPENAI_API_KEY": SECRET}, fake_which("git", "claude")))

    assert set(found) == {"git", "tmux", "bwrap", *PRESET_TABLE, *WELL_KNOWN_KEYS}
    assert found["git"].ok and found["git"].needed and "/usr/bin/git" in found["git"].detail
    assert not found["tmux"].ok and not found["tmux"].needed and "apt install tmux" in found["tmux"].fix
    assert not found["bwrap"].ok and "bubblewrap" in found["bwrap"].fix
    assert found["claude"].ok and not found["codex"].ok
    assert found["codex"].fix == "npm install -g @openai/codex" and not found["codex"].needed
    assert found["OPENAI_API_KEY"].ok and found["OPENAI_API_KEY"].detail.startswith("set")
    assert not found["ANTHROPIC_API_KEY"].ok and not found["ANTHROPIC_API_KEY"].needed
    assert [f for f in found.values() if f.needed] == [found["git"]]


def test_a_missing_git_is_needed_by_orchestra_itself() -> None:
    git_finding = by_subject(diagnose(None, {}, fake_which()))["git"]
    assert not git_finding.ok and git_finding.needed and "install git" in git_finding.fix


def test_the_presets_a_score_uses_are_needed_and_name_their_agents() -> None:
    agents = (Agent("fixer", "cli", preset="claude"), Agent("tester", "cli", preset="aider"),
              Agent("mine", "cli", preset="codex", command="my-codex {prompt}"))
    found = by_subject(diagnose(score(*agents), {}, fake_which("git", "aider")))

    assert not found["claude"].ok and found["claude"].needed
    assert "used by agent fixer" in found["claude"].detail
    assert found["claude"].fix == "npm install -g @anthropic-ai/claude-code"
    assert found["aider"].ok and found["aider"].needed and "used by agent tester" in found["aider"].detail
    # A custom command replaces the preset, so the agent does not need codex.
    assert not found["codex"].needed and "no agent uses it" in found["codex"].detail


def test_every_api_key_env_of_the_score_is_checked_and_needed() -> None:
    agents = (Agent("a", "cli", preset="claude", api_key_env="WORK_ANTHROPIC_KEY"),
              Agent("b", "llm", model="openai/gpt-4.1", api_key_env="WORK_ANTHROPIC_KEY"),
              Agent("c", "llm", model="openai/gpt-4.1", api_key_env="TEAM_KEY"))
    environ = {"TEAM_KEY": SECRET}
    found = by_subject(diagnose(score(*agents), environ, fake_which("git", "claude")))

    work = found["WORK_ANTHROPIC_KEY"]
    assert not work.ok and work.needed and "used by agents a, b" in work.detail
    assert work.fix == "export WORK_ANTHROPIC_KEY=..."
    assert found["TEAM_KEY"].ok and found["TEAM_KEY"].needed
    assert not found["OPENAI_API_KEY"].needed  # the agents name their own keys


def test_an_llm_agent_needs_its_providers_key_unless_its_model_is_local() -> None:
    agents = (Agent("cloud", "llm", model="anthropic/claude-sonnet-4-5"),
              Agent("bare", "llm", model="gpt-4.1"),
              Agent("laptop", "llm", model="ollama/qwen2.5-coder"),
              Agent("lan", "llm", model="openai/qwen", api_base="http://localhost:8000/v1"),
              Agent("odd", "llm", model="mystery-model"))
    found = by_subject(diagnose(score(*agents), {}, fake_which("git")))

    assert found["ANTHROPIC_API_KEY"].needed and "used by agent cloud" in found["ANTHROPIC_API_KEY"].detail
    assert found["OPENAI_API_KEY"].needed and "used by agent bare" in found["OPENAI_API_KEY"].detail
    assert found["agent laptop"].ok and "no key needed" in found["agent laptop"].detail
    assert found["agent lan"].ok and "agent odd" not in found


@pytest.mark.parametrize(("model", "api_base", "local"), [
    ("ollama/llama3", None, True), ("ollama_chat/llama3", None, True), ("openai/x", "http://127.0.0.1:1234/v1", True),
    ("openai/x", "http://[::1]:8080", True), ("openai/x", "http://models.localhost/v1", True),
    ("openai/x", "https://api.example.com/v1", False), ("anthropic/claude", None, False), (None, None, False),
])
def test_is_local_model(model: str | None, api_base: str | None, local: bool) -> None:
    assert is_local_model(Agent("x", "llm", model=model, api_base=api_base)) is local


def test_a_keys_value_is_never_shown_and_keys_nobody_needs_come_without_a_fix() -> None:
    environ = {name: SECRET for name in WELL_KNOWN_KEYS[:3]} | {"MINE": SECRET}
    findings = diagnose(score(Agent("a", "cli", preset="gemini", api_key_env="MINE")), environ, fake_which())
    assert all(SECRET not in f"{f.detail} {f.fix}" for f in findings)
    found = by_subject(findings)
    assert found["XAI_API_KEY"].fix == "" and found["MINE"].ok and found["MINE"].detail.startswith("set")


# --- the command ---------------------------------------------------------------------------------

def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *tools: str) -> None:
    """A PATH holding only the named real tools (so the presets are surely not installed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} is needed by this test"
        os.symlink(real, bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_doctor_works_outside_a_repository_and_fails_nothing_without_a_score(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake_path(tmp_path, monkeypatch, "git")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    outside = tmp_path / "plain"
    outside.mkdir()

    code = main(["-C", str(outside), "doctor"])

    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["ok", "git"]
    assert any(line.split()[:2] == ["missing", "claude"] for line in lines)
    assert "         npm install -g @anthropic-ai/claude-code" in lines
    assert any(line.split()[:3] == ["ok", "OPENAI_API_KEY", "set"] for line in lines)
    assert SECRET not in out
    assert lines[-1] == "Nothing is missing (no score here, so only orchestra's own needs)."


def test_doctor_exits_1_when_an_agent_of_the_score_lacks_its_cli_or_key(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "orchestra.toml").write_text(
        '[[agents]]\nname = "fixer"\nkind = "cli"\npreset = "claude"\napi_key_env = "WORK_KEY"\n', "utf-8")
    fake_path(tmp_path, monkeypatch, "git")
    monkeypatch.delenv("WORK_KEY", raising=False)

    code = main(["-C", str(repo / "src"), "doctor"])

    out, _ = capsys.readouterr()
    assert code == 1
    assert "used by agent fixer" in out and "         export WORK_KEY=..." in out.splitlines()
    assert out.splitlines()[-1] == f"Missing for the score {repo / 'orchestra.toml'}: claude, WORK_KEY"


def test_doctor_says_plainly_whether_the_ledger_is_signed_and_agents_are_sandboxed(repo: Path) -> None:
    from tests.core.helpers import cli
    unsigned = cli("-C", str(repo), "doctor").stdout
    assert "ledger signing      not configured" in unsigned and "not who wrote them" in unsigned
    from orchestra.core.jail import probe
    assert ("ok       agent sandbox       bubblewrap works" if probe().works else "note     agent sandbox       not available") \
        in unsigned
    key = repo.parent / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    for name, value in (("gpg.format", "ssh"), ("user.signingkey", str(key))):
        subprocess.run(["git", "config", name, value], cwd=repo, check=True)
    signed_unchecked = cli("-C", str(repo), "doctor").stdout
    assert "no gpg.ssh.allowedSignersFile is set" in signed_unchecked
    allowed = repo.parent / "allowed"
    allowed.write_text(f"conductor@example.test {Path(f'{key}.pub').read_text()}")
    subprocess.run(["git", "config", "gpg.ssh.allowedSignersFile", str(allowed)], cwd=repo, check=True)
    signed = cli("-C", str(repo), "doctor").stdout
    assert f"ok       ledger signing      entries are signed as conductor@example.test with {key}" in signed


@pytest.mark.parametrize("mode", ["auto", "required", "off"])
def test_doctor_says_what_a_machine_without_a_sandbox_means_for_the_score(mode: str) -> None:
    from orchestra.core.jail import SandboxStatus
    from orchestra.core.onboarding.doctor import trust_findings
    finding = trust_findings(None, SandboxStatus(False, "bubblewrap is not installed"), mode)[-1]
    assert finding.subject == "agent sandbox" and not finding.ok
    expected = {"auto": "agents run unsandboxed, as you", "required": "runs are refused",
                "off": "off in the score"}[mode]
    assert expected in finding.detail and finding.needed == (mode == "required")
