"""orchestra doctor: tools, agent CLIs and provider keys, judged with a fake environment and PATH."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.onboarding.doctor import (TESTED_RELEASES, WELL_KNOWN_KEYS, Finding, diagnose, is_local_model,
                                              parse_version, probe_version)
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
    assert any(line.split()[:3] == ["ok", "OPENAI_API_KEY", "set"] for line in lines)
    # What no agent needs is one line, not a "missing" line each, so the verdict below agrees with it.
    assert not [line for line in lines if line.startswith("missing")]
    optional = [line for line in lines if line.startswith("optional")]
    assert optional == ["optional not installed: tmux, bwrap, claude, codex, aider, gemini, opencode; "
                        "not set: 8 provider keys"]
    assert "`orchestra doctor --all` lists each" in out and "npm install" not in out
    assert SECRET not in out
    assert lines[-1] == "Nothing needed is missing (no score here, so only orchestra's own needs)."


def test_doctor_all_lists_each_optional_thing_with_how_to_get_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake_path(tmp_path, monkeypatch, "git")
    monkeypatch.delenv("XAI_API_KEY", raising=False)

    for flag in ("--all", "-v"):
        assert main(["-C", str(tmp_path), "doctor", flag]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert any(line.split()[:2] == ["optional", "claude"] for line in lines)
        assert "         npm install -g @anthropic-ai/claude-code" in lines
        assert any(line.split()[:3] == ["optional", "XAI_API_KEY", "not"] for line in lines)
        assert not [line for line in lines if line.startswith("missing")]
        assert lines[-1].startswith("Nothing needed is missing")


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
    # What stops the score's agent comes first, each with its fix; then what is there.
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [["missing", "claude"], ["npm", "install"],
                                                        ["missing", "WORK_KEY"], ["export", "WORK_KEY=..."]]
    assert lines[4] == "" and lines[5].split()[:2] == ["ok", "git"]


def test_the_verdict_agrees_with_the_lines_above_it() -> None:
    from orchestra.core.onboarding.doctor_report import doctor_report
    needed = Finding("claude", False, "not installed (used by agent fixer)", "npm install …", needed=True)
    sandbox = Finding("agent sandbox", False, "not available; runs are refused", "install bubblewrap", needed=True)
    note = Finding("ledger signing", False, "not configured", "to sign: …")
    fine = Finding("git", True, "/usr/bin/git", "install git", needed=True)
    unused = Finding("codex", False, "not installed (no agent uses it)", "npm install -g @openai/codex")
    key = Finding("XAI_API_KEY", False, "not set (no agent needs it)")

    report = doctor_report([fine, needed, unused, key], [note, sandbox], Path("/r"), Path("/r/orchestra.toml"))

    labels = [line.split()[:2] for line in report.lines if line and not line.startswith(" ")]
    assert labels[:3] == [["missing", "claude"], ["missing", "agent"], ["ok", "git"]]
    assert report.gaps == ["claude", "agent sandbox"]
    assert report.lines[-1] == "Missing for the score /r/orchestra.toml: claude, agent sandbox"
    assert "optional not installed: codex; not set: 1 provider key" in report.lines
    assert report.lines.count("note     ledger signing      not configured") == 1
    assert sum("agent sandbox" in line for line in report.lines[:-1]) == 1  # said once, among what stops the agents
    calm = doctor_report([fine, unused], [note], Path("/r"), None)
    assert calm.gaps == []
    assert calm.lines[-1] == "Nothing needed is missing (no score here, so only orchestra's own needs)."


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


def test_doctor_names_the_pairs_at_auto_and_flags_them_without_a_sandbox() -> None:
    from orchestra.core.jail import SandboxStatus
    from orchestra.core.onboarding.doctor import trust_findings
    assert [f.subject for f in trust_findings(None, SandboxStatus(True, ""))] == ["ledger signing", "agent sandbox"]
    sandboxed = trust_findings(None, SandboxStatus(True, ""), "auto", (("fix", "coder"),))[-1]
    assert (sandboxed.subject, sandboxed.ok) == ("autonomy", True) and "fix/coder at auto" in sandboxed.detail
    bare = trust_findings(None, SandboxStatus(False, "bubblewrap is not installed"), "auto", (("fix", "coder"),))[-1]
    assert (bare.subject, bare.ok) == ("autonomy", False) and "can write the ledger that grants it" in bare.detail


# --- versions of the installed CLIs --------------------------------------------------------------

CLAUDE_SCRIPT = "#!/usr/bin/env node\n"  # how npm installs a node CLI: run by the node on PATH


def stub(bin_dir: Path, name: str, script: str) -> Path:
    """An executable named name in bin_dir running the sh script (or any script with its own #! line)."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(script if script.startswith("#!") else f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


def prints(version_line: str) -> str:
    return f"echo '{version_line}'"


def on(bin_dir: Path) -> Callable[[str], str | None]:
    return lambda name: shutil.which(name, path=str(bin_dir))


def test_each_installed_cli_shows_its_version_warning_outside_the_tested_minor(tmp_path: Path) -> None:
    for name, line in (("claude", "2.1.401 (Claude Code)"), ("codex", "codex-cli 0.172.0"), ("gemini", "0.61.0"),
                       ("opencode", "1.17.9"), ("aider", "aider 0.86.2")):
        stub(tmp_path, name, prints(line))
    agents = (Agent("fixer", "cli", preset="codex"),)
    found = by_subject(diagnose(score(*agents), {}, on(tmp_path)))

    for name, version in (("claude", "2.1.401"), ("gemini", "0.61.0"), ("aider", "0.86.2")):
        assert found[name].ok and not found[name].warning, found[name]
        assert found[name].detail.startswith(f"{PRESET_TABLE[name].title} {version}: {tmp_path / name}")
    codex = found["codex"]
    assert codex.ok and codex.warning and codex.needed  # a warning, not a gap: doctor does not fail for it
    assert "Codex CLI 0.172.0" in codex.detail and "untested version: the tests cover 0.171.x (0.171.0)" in codex.detail
    assert codex.fix == "npm install -g @openai/codex@0.171.0"
    assert found["opencode"].warning and found["opencode"].fix == "npm install -g opencode-ai@1.18.33"


def test_a_cli_that_hangs_or_says_no_version_is_a_warning_and_doctor_does_not_wait(tmp_path: Path) -> None:
    # The helper it leaves behind keeps its output open: the wait must not depend on it.
    stub(tmp_path, "gemini", "sleep 30 & sleep 30")
    stub(tmp_path, "aider", "echo 'usage: aider [options]' >&2; exit 2")
    stub(tmp_path, "claude", "read answer; echo \"$answer\"")  # stdin is /dev/null: no answer, no version
    started = time.monotonic()

    found = by_subject(diagnose(None, {}, on(tmp_path), lambda path: probe_version(path, timeout=1)))

    assert time.monotonic() - started < 5
    for name in ("gemini", "aider", "claude"):
        assert found[name].ok and found[name].warning
        assert f"version unknown: `{name} --version` gave none" in found[name].detail
    assert probe_version(str(tmp_path / "missing")) is None


def test_claude_says_it_needs_node_22_when_npm_would_install_it_with_an_older_node(tmp_path: Path) -> None:
    stub(tmp_path, "node", prints("v20.11.1"))

    missing = by_subject(diagnose(None, {}, on(tmp_path)))["claude"]

    assert not missing.ok and f"needs Node 22 or newer (npm on an older Node installs an older release), " \
        f"and {tmp_path / 'node'} is 20.11.1" in missing.detail
    assert missing.fix == ("install Node 22 (e.g. `nvm install 22`, or from nodejs.org), then "
                           "npm install -g @anthropic-ai/claude-code")
    assert not by_subject(diagnose(None, {}, on(tmp_path)))["codex"].warning  # codex needs no particular Node

    stub(tmp_path, "claude", prints("2.0.76 (Claude Code)"))  # what npm on Node 20 installed
    old = by_subject(diagnose(None, {}, on(tmp_path)))["claude"]
    assert old.ok and old.warning and "untested version" in old.detail and "needs Node 22" in old.detail
    assert old.fix.endswith("then npm install -g @anthropic-ai/claude-code@2.1.332")


def test_claudes_node_matters_only_when_it_runs_under_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")  # for `#!/usr/bin/env node`
    stub(tmp_path, "node", 'if [ "$1" = --version ]; then echo v20.11.1; else echo "2.1.332 (Claude Code)"; fi')
    stub(tmp_path, "claude", prints("2.1.332 (Claude Code)"))  # the native binary: no Node at run time
    assert not by_subject(diagnose(None, {}, on(tmp_path)))["claude"].warning

    stub(tmp_path, "claude", CLAUDE_SCRIPT)  # a node script, run by the old node on PATH
    script = by_subject(diagnose(None, {}, on(tmp_path)))["claude"]
    assert script.ok and script.warning and "Claude Code 2.1.332" in script.detail
    assert f"needs Node 22 or newer (npm on an older Node installs an older release), and {tmp_path / 'node'} " \
        "is 20.11.1" in script.detail

    stub(tmp_path, "node", 'if [ "$1" = --version ]; then echo v22.3.0; else echo "2.1.332 (Claude Code)"; fi')
    assert not by_subject(diagnose(None, {}, on(tmp_path)))["claude"].warning


@pytest.mark.parametrize(("output", "version"), [
    ("2.1.332 (Claude Code)\n", (2, 1, 332)), ("codex-cli 0.171.0", (0, 171, 0)), ("v22.23.3", (22, 23, 3)),
    ("aider 0.86.2\n", (0, 86, 2)), ("1.18", (1, 18)), ("no version here", None), ("", None), (None, None),
])
def test_parse_version(output: str | None, version: tuple[int, ...] | None) -> None:
    assert parse_version(output) == version


def test_the_tested_releases_are_the_ones_the_integration_tests_install() -> None:
    root = Path(__file__).resolve().parents[2]
    pinned = json.loads((root / "tests/integration/clis/package.json").read_text())["dependencies"]
    aider = re.search(r"^AIDER_VERSION=(\S+)$", (root / "dev").read_text(), re.MULTILINE)
    packages = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex", "gemini": "@google/gemini-cli",
                "opencode": "opencode-ai"}
    assert {name: TESTED_RELEASES[name].version for name in packages} == \
        {name: pinned[package] for name, package in packages.items()}
    assert aider and TESTED_RELEASES["aider"].version == aider.group(1)
    assert all(release.version in release.install for release in TESTED_RELEASES.values())
    assert set(TESTED_RELEASES) == set(PRESET_TABLE)


def test_doctor_prints_each_clis_version_and_a_version_warning_does_not_fail_it(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "orchestra.toml").write_text('[[agents]]\nname = "fixer"\nkind = "cli"\npreset = "codex"\n', "utf-8")
    fake_path(tmp_path, monkeypatch, "git")
    stub(tmp_path / "bin", "codex", prints("codex-cli 0.99.1"))

    code = main(["-C", str(repo), "doctor"])

    out, _ = capsys.readouterr()
    codex = next(line for line in out.splitlines() if line.split()[1:2] == ["codex"])
    assert code == 0 and "Codex CLI 0.99.1" in codex and "the tests cover 0.171.x (0.171.0)" in codex


def test_a_gemini_agent_with_an_api_base_needs_the_api_key_sign_in_chosen_in_its_settings(tmp_path: Path) -> None:
    from orchestra.core.onboarding.doctor import diagnose
    from orchestra.core.score import parse_score
    score = parse_score('[[agents]]\nname = "gem"\nkind = "cli"\npreset = "gemini"\napi_base = "http://127.0.0.1:9"\n'
                        '[[specs]]\nid = "s"\nintent = "x"\n', tmp_path / "orchestra.toml")
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    environ = {"HOME": str(home)}

    def endpoint() -> object:
        return next(f for f in diagnose(score, environ, lambda name: None, probe=lambda path: None)
                    if f.subject == "gemini endpoint")
    missing = endpoint()
    assert not missing.ok and missing.needed and "gemini-api-key" in missing.fix and "gem" in missing.detail
    (home / ".gemini" / "settings.json").write_text('{"security": {"auth": {"selectedType": "gemini-api-key"}}}')
    assert endpoint().ok
