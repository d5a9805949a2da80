"""What `orchestra doctor` checks: tools, agent CLIs and provider keys, and what to do about each gap.

diagnose() is pure: the environment and the PATH lookup are passed in. A key's value is never put in a
finding, only whether it is set. A finding is `needed` when an agent of the score (or orchestra
itself) cannot work without it; the command fails only when such a finding is not ok.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from orchestra.core.agents.presets import PRESET_TABLE, PROVIDER_KEYS, model_provider
from orchestra.core.jail import SandboxStatus
from orchestra.core.ledger.signing import SigningConfig
from orchestra.core.runs.run import Run
from orchestra.core.score import Agent, Score

__all__ = ["WELL_KNOWN_KEYS", "Finding", "diagnose", "is_local_model", "repository_findings", "trust_findings"]

WELL_KNOWN_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                   "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY", "MISTRAL_API_KEY", "GROQ_API_KEY",
                   "XAI_API_KEY")
# (executable, what orchestra uses it for, install hint, needed by orchestra itself)
_TOOLS = (
    ("git", "runs, worktrees and merges", "install git, e.g. `sudo apt install git`", True),
    ("tmux", "keeps a session alive over SSH; the end-to-end tests drive it",
     "install tmux, e.g. `sudo apt install tmux`", False),
    ("bwrap", "bubblewrap: the sandbox around agents and their gates",
     "install bubblewrap, e.g. `sudo apt install bubblewrap`", False),
)
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
_LOCAL_PROVIDERS = ("ollama", "ollama_chat", "lm_studio", "llamafile")


@dataclass(frozen=True)
class Finding:
    """One thing checked: ok or not, what was found, and how to fix it when it is missing."""

    subject: str
    ok: bool
    detail: str
    fix: str = ""
    needed: bool = False  # an agent of the score (or orchestra itself) cannot work without it


def diagnose(score: Score | None, environ: Mapping[str, str],
             which: Callable[[str], str | None]) -> list[Finding]:
    """Every finding, in order: tools, agent CLIs, agents on local models, provider keys."""
    agents = score.agents if score else ()
    return [*_tools(which), *_clis(agents, which), *_local_agents(agents), *_keys(agents, environ)]


def is_local_model(agent: Agent) -> bool:
    """An llm agent served on this machine (ollama/..., or an api_base on localhost) needs no key."""
    if model_provider(agent.model) in _LOCAL_PROVIDERS:
        return True
    host = urlsplit(agent.api_base).hostname if agent.api_base else None
    return host is not None and (host in _LOCAL_HOSTS or host.endswith(".localhost"))


def _tools(which: Callable[[str], str | None]) -> list[Finding]:
    findings = []
    for name, use, fix, needed in _TOOLS:
        path = which(name)
        detail = f"{path} ({use})" if path else f"not found ({use})"
        findings.append(Finding(name, path is not None, detail, fix, needed))
    return findings


def _clis(agents: tuple[Agent, ...], which: Callable[[str], str | None]) -> list[Finding]:
    findings = []
    for preset in PRESET_TABLE.values():
        users = [a.name for a in agents if a.kind == "cli" and a.preset == preset.name and not a.command]
        path = which(preset.executable)
        use = _used_by(users) if users else "no agent uses it"
        detail = f"{preset.title}: {path or 'not installed'} ({use})"
        findings.append(Finding(preset.name, path is not None, detail, preset.install, bool(users)))
    return findings


def _local_agents(agents: tuple[Agent, ...]) -> list[Finding]:
    return [Finding(f"agent {a.name}", True, f"local model {a.model or a.api_base}: no key needed")
            for a in agents if a.kind == "llm" and not a.api_key_env and is_local_model(a)]


def _key_users(agents: tuple[Agent, ...]) -> dict[str, list[str]]:
    """Key variable -> the agents that cannot work without it."""
    users: dict[str, list[str]] = {}
    for agent in agents:
        name = agent.api_key_env or _llm_default_key(agent)
        if name:
            users.setdefault(name, []).append(agent.name)
    return users


def _llm_default_key(agent: Agent) -> str | None:
    """The key an llm agent reads when it names none: its provider's, unless the model is local."""
    if agent.kind != "llm" or is_local_model(agent):
        return None
    return PROVIDER_KEYS.get(model_provider(agent.model) or "")


def _keys(agents: tuple[Agent, ...], environ: Mapping[str, str]) -> list[Finding]:
    users = _key_users(agents)
    findings = []
    for name in dict.fromkeys([*WELL_KNOWN_KEYS, *users]):
        present = bool(environ.get(name))
        who = _used_by(users[name]) if name in users else "no agent needs it"
        detail = f"{'set' if present else 'not set'} ({who})"
        # A key no agent needs is not a gap, so it comes without a fix.
        fix = f"export {name}=..." if name in users else ""
        findings.append(Finding(name, present, detail, fix, name in users))
    return findings


def _used_by(names: list[str]) -> str:
    return f"used by agent{'s' if len(names) > 1 else ''} {', '.join(names)}"


def repository_findings(state_dir: Path, runs: list[Run], strays: list[str],
                        pending_decisions: int) -> list[Finding]:
    """What orchestra's own state in a repository needs a human for: never fatal, always said."""
    findings = []
    if strays:
        findings.append(Finding("state", False, f"ignored in {state_dir / 'runs'}: {', '.join(strays)} "
                                "(not runs: backups, or spawns that died before writing a record)",
                                "remove them if you do not need them"))
    for run in runs:
        if run.damaged:
            findings.append(Finding(f"run {run.id}", False, f"record damaged: {run.message}",
                                    f"orchestra reject {run.id} --reason ...  (its branch, if any, is kept)"))
        elif run.kept:
            findings.append(Finding(f"run {run.id}", False, f"worktree kept after {run.state}: {run.kept['reason']} "
                                    f"({run.kept['path']})", "look at it, then delete it by hand"))
    if pending_decisions:
        findings.append(Finding("decisions", False, f"{pending_decisions} interrupted decision(s) in the journal",
                                "any orchestra command completes or rolls them back (e.g. `orchestra runs`)"))
    return findings


SIGN_HOW = ("to sign: git config gpg.format ssh; git config user.signingkey ~/.ssh/id_ed25519.pub (or a private "
            "key file); git config gpg.ssh.allowedSignersFile ~/.config/git/allowed_signers")


def trust_findings(signing: SigningConfig | None, sandbox: SandboxStatus, mode: str = "auto") -> list[Finding]:
    """What the guarantees in this repository rest on, said plainly: ledger signing, and the agents' reach."""
    findings = []
    if signing is None or not signing.enabled:
        findings.append(Finding("ledger signing", False, "not configured: ledger entries are not signed, so "
                                "`orchestra ledger verify` proves they agree with each other and with git, "
                                "not who wrote them", SIGN_HOW))
    elif signing.allowed_signers is None:
        findings.append(Finding("ledger signing", False, f"entries are signed with {signing.signing_key}, but "
                                "no gpg.ssh.allowedSignersFile is set: verify cannot check the signatures",
                                "git config gpg.ssh.allowedSignersFile <file listing your key>"))
    else:
        findings.append(Finding("ledger signing", True, f"entries are signed as {signing.principal} with "
                                f"{signing.signing_key}; verify checks them against {signing.allowed_signers}"))
    findings.append(_sandbox_finding(sandbox, mode))
    return findings


def _sandbox_finding(sandbox: SandboxStatus, mode: str) -> Finding:
    """The real sandbox probe's verdict, with what the score's mode makes of it."""
    if mode == "off":
        return Finding("agent sandbox", False, "off in the score ([orchestra] sandbox = \"off\"): agents run as you "
                       "and can read and write what you can", "remove sandbox = \"off\" to sandbox them")
    if sandbox.works:
        return Finding("agent sandbox", True, "bubblewrap works: agents and their gates see their worktree, not your "
                       "checkout, home or keys" + (" (required by the score)" if mode == "required" else ""))
    consequence = ("runs are refused (the score requires a sandbox)" if mode == "required"
                   else "agents run unsandboxed, as you, and every run says so")
    return Finding("agent sandbox", False, f"not available: {sandbox.reason}; {consequence}",
                   "install bubblewrap (sudo apt install bubblewrap), on a machine that allows user namespaces",
                   needed=mode == "required")
