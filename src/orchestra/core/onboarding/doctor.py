"""What `orchestra doctor` checks: tools, agent CLIs and provider keys, and what to do about each gap.

diagnose() is pure but for one thing: the environment and the PATH lookup are passed in, and so is the
probe that runs each installed CLI's `--version` (the real one by default, bounded by a timeout). A
key's value is never put in a finding, only whether it is set. A finding is `needed` when an agent of
the score (or orchestra itself) cannot work without it; the command fails only when such a finding is
not ok. An installed CLI whose version the tests do not cover is ok, with a warning.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from orchestra.core.agents.presets import (
    PRESET_TABLE,
    PROVIDER_KEYS,
    Preset,
    model_provider,
)
from orchestra.core.base.procs import kill_group
from orchestra.core.jail import SandboxStatus
from orchestra.core.ledger.signing import SigningConfig
from orchestra.core.runs.run import Run
from orchestra.core.score import Agent, Score
from orchestra.core.base.words import plural

__all__ = ["TESTED_RELEASES", "WELL_KNOWN_KEYS", "Finding", "TestedRelease", "diagnose", "is_local_model",
           "parse_version", "probe_version", "repository_findings", "trust_findings"]

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
VERSION_TIMEOUT = 10.0  # seconds for `<cli> --version`: gemini takes ~3 s to start on a cold cache


@dataclass(frozen=True)
class Finding:
    """One thing checked: ok or not, what was found, and how to fix it when it is missing."""

    subject: str
    ok: bool
    detail: str
    fix: str = ""
    needed: bool = False  # an agent of the score (or orchestra itself) cannot work without it
    # ok, but with a caveat the detail states (a version the tests do not cover, too old a Node): shown
    # as a warning, with its fix; it never fails the command.
    warning: bool = False


@dataclass(frozen=True)
class TestedRelease:
    """The release of a CLI the integration tests drive, and what it needs."""

    version: str
    install: str  # installs exactly this release
    node: int | None = None  # the oldest Node major it needs: npm on an older one installs an older release

    def covers(self, version: tuple[int, ...]) -> bool:
        """Whether a version is within what the tests cover: the same major.minor."""
        return version[:2] == tuple(int(part) for part in self.version.split(".")[:2])


# What tests/integration runs for real (tests/integration/clis/package.json, AIDER_VERSION in ./dev).
TESTED_RELEASES: Mapping[str, TestedRelease] = MappingProxyType({
    "claude": TestedRelease("2.1.332", "npm install -g @anthropic-ai/claude-code@2.1.332", node=22),
    "codex": TestedRelease("0.171.0", "npm install -g @openai/codex@0.171.0"),
    "gemini": TestedRelease("0.61.0", "npm install -g @google/gemini-cli@0.61.0"),
    "opencode": TestedRelease("1.18.33", "npm install -g opencode-ai@1.18.33"),
    "aider": TestedRelease("0.86.2", "pipx install aider-chat==0.86.2"),
})
_VERSION = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?:\.(\d+))?")


def diagnose(score: Score | None, environ: Mapping[str, str], which: Callable[[str], str | None],
             probe: Callable[[str], str | None] | None = None) -> list[Finding]:
    """Every finding, in order: tools, agent CLIs, agents on local models, provider keys.

    probe(executable) is what `executable --version` prints, or None (default: probe_version).
    """
    agents = score.agents if score else ()
    return [*_tools(which), *_clis(agents, which, probe or probe_version), *_local_agents(agents),
            *_gemini_endpoints(agents, environ), *_keys(agents, environ)]


def _gemini_endpoints(agents: tuple[Agent, ...], environ: Mapping[str, str]) -> list[Finding]:
    """Gemini CLI (0.61) sent to an api_base works only when its settings choose the API-key sign-in
    (security.auth.selectedType "gemini-api-key"): from the environment alone it refuses ("Invalid auth
    method selected.", exit 41) before any request."""
    users = [a.name for a in agents if a.kind == "cli" and a.preset == "gemini" and a.api_base and not a.command]
    if not users:
        return []
    settings = Path(environ.get("HOME") or Path.home()) / ".gemini" / "settings.json"
    try:
        chosen = (json.loads(settings.read_text()).get("security") or {}).get("auth", {}).get("selectedType")
    except (OSError, ValueError, AttributeError):
        chosen = None
    if chosen == "gemini-api-key":
        return [Finding("gemini endpoint", True, f"{settings} chooses the API-key sign-in: api_base works "
                        f"({_used_by(users)})")]
    return [Finding("gemini endpoint", False, f"{settings} does not choose the API-key sign-in, so Gemini CLI "
                    f"refuses an api_base before any request ({_used_by(users)})",
                    f'add "security": {{"auth": {{"selectedType": "gemini-api-key"}}}} to {settings} (what signing '
                    "in with a key writes)", needed=True)]


def probe_version(executable: str, timeout: float = VERSION_TIMEOUT) -> str | None:
    """What `executable --version` prints within timeout (None when it cannot run or is too slow).

    Its output goes to a file, not a pipe: a helper it leaves behind holding the output open (gemini
    relaunches itself) cannot stretch the wait. It reads no stdin; on timeout its process group dies.
    """
    with tempfile.TemporaryFile() as output:
        try:
            proc = subprocess.Popen([executable, "--version"], stdin=subprocess.DEVNULL, stdout=output,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError:
            return None
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait()
            return None
        output.seek(0)
        return output.read(4096).decode("utf-8", "replace")


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """The first version number in a CLI's --version output ("codex-cli 0.171.0", "v22.1.0")."""
    found = _VERSION.search(text or "")
    return tuple(int(part) for part in found.groups() if part is not None) if found else None


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


def _clis(agents: tuple[Agent, ...], which: Callable[[str], str | None],
          probe: Callable[[str], str | None]) -> list[Finding]:
    paths = {preset.name: which(preset.executable) for preset in PRESET_TABLE.values()}
    node_on_path = which("node")
    outputs = _probe_all({**paths, "node": node_on_path}, probe)

    def probe_node(node: str) -> str | None:  # the node on PATH was probed with the CLIs
        return outputs.get("node") if node == node_on_path else probe(node)

    findings = []
    for preset in PRESET_TABLE.values():
        users = [a.name for a in agents if a.kind == "cli" and a.preset == preset.name and not a.command]
        path, output = paths[preset.name], outputs.get(preset.name)
        node = _node_of(preset.name, path, output, which, probe_node)
        findings.append(_cli_finding(preset, path, users, output, node))
    return findings


def _probe_all(paths: Mapping[str, str | None], probe: Callable[[str], str | None]) -> dict[str, str | None]:
    """Each found executable's --version output, all at once: doctor waits for the slowest only."""
    found = {name: path for name, path in paths.items() if path}
    if not found:
        return {}
    with ThreadPoolExecutor(max_workers=len(found)) as pool:
        return dict(zip(found, pool.map(probe, found.values())))


def _node_of(name: str, path: str | None, output: str | None, which: Callable[[str], str | None],
             probe: Callable[[str], str | None]) -> tuple[str, tuple[int, ...]] | None:
    """The Node (path, version) that matters for a CLI needing one, when it is too old; else None.

    That is a node script's interpreter; or, for a CLI not installed or at a release the tests do not
    cover, the node on PATH, which npm installs with (and picks an older release for, when too old).
    A native binary at a covered release runs under no Node.
    """
    tested = TESTED_RELEASES.get(name)
    if tested is None or tested.node is None:
        return None
    interpreter = _script_interpreter(path) if path else None
    covered = path is not None and tested.covers(parse_version(output) or ())
    node = which("node") if interpreter == "node" or (interpreter is None and not covered) else interpreter
    version = parse_version(probe(node)) if node else None
    return (node, version) if node and version and version[0] < tested.node else None


def _script_interpreter(path: str) -> str | None:
    """"node" for a `#!/usr/bin/env node` script, the interpreter's path for `#!/…/node`, else None."""
    try:
        with open(path, "rb") as script:
            first = script.readline(256)
    except OSError:
        return None
    words = first[2:].decode("utf-8", "replace").split() if first.startswith(b"#!") else []
    if not words or "node" not in (Path(word).name for word in words):
        return None
    return "node" if Path(words[0]).name == "env" else words[0]


def _cli_finding(preset: Preset, path: str | None, users: list[str], output: str | None,
                 node: tuple[str, tuple[int, ...]] | None) -> Finding:
    use = _used_by(users) if users else "no agent uses it"
    tested = TESTED_RELEASES.get(preset.name)
    node_text, node_fix = _node_advice(tested, node) if tested and node else ("", "")
    if path is None:
        detail = "; ".join([f"{preset.title}: not installed ({use})", *([node_text] if node_text else [])])
        return Finding(preset.name, False, detail, node_fix + preset.install, bool(users))
    version = parse_version(output)
    caveats = [*_version_caveat(preset, tested, version), *([node_text] if node_text else [])]
    detail = f"{preset.title} {_dotted(version)}".rstrip() + f": {path} ({use})"
    fix = node_fix + tested.install if tested and caveats else ""
    return Finding(preset.name, True, "; ".join([detail, *caveats]), fix, bool(users), warning=bool(caveats))


def _node_advice(tested: TestedRelease, node: tuple[str, tuple[int, ...]]) -> tuple[str, str]:
    """What a too old Node means for a CLI, and the start of its fix."""
    path, version = node
    text = (f"needs Node {tested.node} or newer (npm on an older Node installs an older release), and "
            f"{path} is {_dotted(version)}")
    return text, f"install Node {tested.node} (e.g. `nvm install {tested.node}`, or from nodejs.org), then "


def _version_caveat(preset: Preset, tested: TestedRelease | None, version: tuple[int, ...] | None) -> list[str]:
    if tested is None:
        return []
    if version is None:
        said = f"`{preset.executable} --version` gave none (it failed, or took over {VERSION_TIMEOUT:.0f} s)"
        return [f"version unknown: {said}; the tests cover {tested.version}"]
    if not tested.covers(version):
        major_minor = ".".join(tested.version.split(".")[:2])
        return [f"untested version: the tests cover {major_minor}.x ({tested.version})"]
    return []


def _dotted(version: tuple[int, ...] | None) -> str:
    return ".".join(map(str, version or ()))


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
        interrupted = plural(pending_decisions, "interrupted decision")
        findings.append(Finding("decisions", False, f"{interrupted} in the journal",
                                "any orchestra command completes or rolls them back (e.g. `orchestra runs`)"))
    return findings


SIGN_HOW = ("to sign: git config gpg.format ssh; git config user.signingkey ~/.ssh/id_ed25519.pub (or a private "
            "key file); git config gpg.ssh.allowedSignersFile ~/.config/git/allowed_signers")


def trust_findings(signing: SigningConfig | None, sandbox: SandboxStatus, mode: str = "auto",
                   auto_pairs: tuple[tuple[str, str], ...] = ()) -> list[Finding]:
    """What the guarantees in this repository rest on, said plainly: ledger signing, the agents' reach, and
    which specs and agents have their ready runs merged without a human."""
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
    if auto_pairs:
        pairs = ", ".join(f"{spec}/{agent}" for spec, agent in auto_pairs)
        if sandbox.works and mode != "off":
            findings.append(Finding("autonomy", True, f"{pairs} at auto: their ready runs are merged by policy, "
                                    "each entry naming who granted it (`orchestra autonomy show`)"))
        else:
            findings.append(Finding("autonomy", False, f"{pairs} at auto while agents run unsandboxed: an agent "
                                    "can write the ledger that grants it, and merge by itself", "orchestra autonomy "
                                    "revoke SPEC AGENT, or make the sandbox work"))
    return findings


def host_findings(hosts: list) -> list[Finding]:
    """The other machines runs may go to ([[hosts]] of the settings), said plainly: what they are trusted with
    (not asked over the network here: `orchestra hosts check` does)."""
    remote = [host for host in hosts if not host.local]
    if not remote:
        return []
    names = ", ".join(f"{host.name} ({host.ssh}, {host.slots} slot{'s' if host.slots != 1 else ''})" for host in remote)
    return [Finding("hosts", True, f"runs may go to {names}: each sees the code sent to it and reports its runs' "
                    "gates; it gets no key but what a run declares, and no ledger; its sandbox is its own "
                    "(each run says whether it was sandboxed there)", "orchestra hosts check", warning=True)]


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
