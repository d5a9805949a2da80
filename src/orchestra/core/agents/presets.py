"""How to run each coding-agent CLI unattended for one turn: its argv, extra environment and secrets.

A cli agent names a `preset` (claude, codex, aider, gemini, opencode) or a custom shell `command`.
cli_invocation() turns one turn of such an agent (the task, or the conductor's redirect) into an
Invocation the agent process execs in the run's worktree. PRESET_TABLE says, per preset, which
executable it needs, how to install it and which provider keys it reads (`orchestra doctor` uses it).

Every flag below comes from the CLI's own documentation, named in Preset.docs. The presets let the
agent edit files in its worktree without asking; where a CLI separates "edit files" from "run any
command" (Claude Code, Gemini CLI) only edits are pre-approved, because the worktree is a sandbox
for files, not for arbitrary programs. What an agent leaves uncommitted, orchestra commits.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.providers import model_provider

__all__ = [
    "PRESET_TABLE", "PROVIDER_KEYS", "STDIN_READERS", "Invocation", "Preset", "PresetError", "cli_invocation",
    "interactive_command", "interactive_invocation", "keeps_stdin_open", "model_provider", "redirect_prompt",
]


class PresetError(OrchestraError):
    """A cli agent cannot be started as configured; the message says what to change."""


@dataclass(frozen=True)
class Preset:
    """What orchestra knows about one coding-agent CLI."""

    name: str
    title: str
    executable: str
    install: str
    key_names: tuple[str, ...]  # provider key variables it reads from its environment
    login: str  # how to sign in without a key ("" when there is no such way)
    docs: str
    # Output lines (regular expressions, case-insensitive) that mean the turn failed though the CLI exits 0:
    # an authentication error, a refused permission, a model error. The run is marked failed with the line.
    failures: tuple[str, ...] = ()
    # Output lines that mean it is stuck on something orchestra cannot answer (a sign-in in a browser, a
    # network it cannot reach): shown as stalled at once, with the line.
    stalls: tuple[str, ...] = ()


PRESET_TABLE: Mapping[str, Preset] = MappingProxyType({
    "claude": Preset(
        "claude", "Claude Code", "claude", "npm install -g @anthropic-ai/claude-code",
        ("ANTHROPIC_API_KEY",), "run `claude` once and sign in",
        "https://docs.anthropic.com/en/docs/claude-code/cli-reference",
        # Its own words for an API error it gave up on: a bad key, an unknown model, a refused request, no
        # connection (each after ten silent retries over about three minutes; CLAUDE_CODE_MAX_RETRIES sets
        # how many). 2.1 exits 1 after them; a release that exits 0 fails all the same.
        failures=(r"^Invalid API key · ", r"^Failed to authenticate\. API Error: ", r"^API Error: ",
                  r"^There's an issue with the selected model \(")),
    "codex": Preset(
        "codex", "Codex CLI", "codex", "npm install -g @openai/codex",
        ("OPENAI_API_KEY", "CODEX_API_KEY"), "codex login",
        "https://developers.openai.com/codex/noninteractive (codex-rs docs/exec.md)",
        # An HTTP error it gives up on (401 bad key, 404 unknown model) ends the turn, with status 1 in 0.171.
        failures=(r"^ERROR: unexpected status \d{3}\b", r"^ERROR: .*\b(?:Unauthorized|invalid_api_key|model_not_found)\b"),
        # With no network it retries forever, printing this every few seconds (and nothing else).
        stalls=(r"^ERROR: Reconnecting\.\.\. waiting for network",)),
    "aider": Preset(
        "aider", "Aider", "aider", "pipx install aider-chat",
        ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY",
         "DEEPSEEK_API_KEY"), "",
        "https://aider.chat/docs/config/options.html",
        # With a model but no key 0.86 prints litellm's error ("litellm.AuthenticationError: Missing Anthropic
        # API Key - ...") and exits 0.
        failures=(r"\b(?:litellm\.)?AuthenticationError\b", r"\bAPIConnectionError\b", r"\bNotFoundError\b.*model"),
        # An openrouter/ model with no OpenRouter key: --yes-always accepts aider's OpenRouter sign-in in a
        # browser, which waits 5 minutes (its last line, "Use Control-C to interrupt.", says less).
        stalls=(r"waiting up to \d+ minutes? for you to finish in the browser",)),
    "gemini": Preset(
        "gemini", "Gemini CLI", "gemini", "npm install -g @google/gemini-cli",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "run `gemini` once and sign in with Google",
        "https://geminicli.com/docs/cli/cli-reference (headless.md, session-management.md)",
        # In 0.61 an API error it gives up on (a bad key, an unknown model) ends the turn with status 1,
        # auth set-up errors with 41, an untrusted folder with 55; these lines say why.
        failures=(r"\bAPI key not valid\b", r"^Error when talking to Gemini API\b", r"^Invalid auth method selected",
                  r"\bis not running in a trusted directory\b"),
        # Without network (or with a failing API) it retries each request up to 10 times over minutes, each
        # time printing "Attempt N failed ... Retrying with backoff..." and the error's stack trace.
        stalls=(r"^Attempt \d+ failed\b.*\bRetrying with backoff\b",)),
    "opencode": Preset(
        "opencode", "OpenCode", "opencode", "npm install -g opencode-ai",
        ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "GEMINI_API_KEY"),
        "opencode auth login", "https://opencode.ai/docs/cli (run) and /docs/config",
        # `run` auto-rejects every permission request ("ask" rules: a path outside the worktree, a doom loop),
        # which ends the turn, and 1.18 exits 0 all the same. A model or key error exits 1. Not "^Error:"
        # in general: run prints its tools' output (a failing test's "Error: ...") on the same stream.
        failures=(r"^Error: The user rejected permission to use this specific tool call\b",
                  r"^! permission requested: .*; auto-rejecting$")),
})

# The key variable of each provider prefix of a litellm-style model name ("openai/gpt-4o").
PROVIDER_KEYS: Mapping[str, str] = MappingProxyType({
    "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY", "deepseek": "DEEPSEEK_API_KEY", "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY", "xai": "XAI_API_KEY",
})


# CLIs that read a piped stdin to its end as more prompt (codex exec, opencode run, claude -p): given a
# pipe that stays open they wait (codex and opencode forever, claude 3 s per turn before it warns), so they
# get /dev/null, and orchestra cannot see them wait. None of them asks on stdin in these modes.
STDIN_READERS = frozenset({"claude", "codex", "opencode"})


def keeps_stdin_open(agent: Mapping[str, Any]) -> bool:
    """Whether the agent gets an open stdin pipe, so a question blocks (and shows as waiting)."""
    return bool(agent.get("command")) or agent.get("preset") not in STDIN_READERS


@dataclass(frozen=True)
class Invocation:
    """One turn of a cli agent: what to exec in the worktree and with which extra environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    resumes: bool = False  # continues the CLI's own earlier conversation
    secret_names: tuple[str, ...] = ()  # names in env whose values must never be logged


@dataclass(frozen=True)
class _Turn:
    """The parts of one turn a preset builder needs."""

    text: str  # the prompt, or the redirect instruction when resuming
    resumes: bool
    model: str | None
    api_base: str | None
    key: str | None  # the provider key's value, already read from the environment
    agent: str


_Built = tuple[list[str], dict[str, str], tuple[str, ...]]  # argv, env, secret names


def cli_invocation(agent: Mapping[str, Any], prompt: str, environ: Mapping[str, str], *,
                   redirect: str | None = None, summary: str = "") -> Invocation:
    """The Invocation for one turn of a cli agent; PresetError when its configuration cannot work.

    prompt is the whole task; redirect, when given, is the conductor's new instruction: presets
    continue their own conversation with it, custom commands start again with redirect_prompt().
    A custom `command` wins over a `preset` when an agent has both.
    """
    name = agent.get("name") or "?"
    key = _key_value(agent, environ)
    if agent.get("command"):
        text = prompt if redirect is None else redirect_prompt(prompt, summary, redirect)
        return _custom(agent, text, key)
    preset = agent.get("preset")
    if preset not in _BUILDERS:
        raise PresetError(f"agent {name!r}: a cli agent needs preset = one of "
                          f"{', '.join(PRESET_TABLE)}, or a command")
    turn = _Turn(text=prompt if redirect is None else redirect, resumes=redirect is not None,
                 model=agent.get("model"), api_base=agent.get("api_base"), key=key, agent=name)
    argv, env, secrets = _BUILDERS[preset](turn)
    return Invocation(tuple(argv), MappingProxyType(env), turn.resumes, secrets)


def interactive_invocation(agent: Mapping[str, Any], prompt: str, environ: Mapping[str, str], *,
                           redirect: str | None = None, summary: str = "") -> Invocation:
    """One turn of a cli agent with session = "interactive": its CLI's own interactive mode, run in a
    pseudo-terminal the conductor attaches to, given the task (or the redirect) as its first prompt where the
    CLI takes one. The environment, keys and endpoint are the one-shot preset's; a custom command is run as
    it is, as one-shot."""
    one_shot = cli_invocation(agent, prompt, environ, redirect=redirect, summary=summary)
    preset = agent.get("preset")
    if agent.get("command") or preset not in _INTERACTIVE_ARGV:
        return one_shot
    turn = _Turn(text=prompt if redirect is None else redirect, resumes=redirect is not None,
                 model=agent.get("model"), api_base=agent.get("api_base"), key=None, agent=agent.get("name") or "?")
    return Invocation(tuple(_INTERACTIVE_ARGV[preset](turn)), one_shot.env, one_shot.resumes, one_shot.secret_names)


def first_prompt_typed(agent: Mapping[str, Any]) -> bool:
    """Whether an interactive agent's CLI takes no first prompt on its command line (the conductor gives it
    the task by attaching)."""
    return agent.get("preset") == "aider" and not agent.get("command")


def interactive_command(agent: Mapping[str, Any]) -> list[str] | None:
    """The agent's CLI run interactively in its worktree (continuing its conversation where it can);
    None for agents that have no CLI of their own (shell, llm, custom commands)."""
    preset = agent.get("preset")
    if agent.get("kind") != "cli" or agent.get("command") or preset not in PRESET_TABLE:
        return None
    continuing = {"claude": ["--continue"], "aider": ["--restore-chat-history"],
                  # `resume --last` leaves out `exec` sessions (every run's) unless asked; the user's own
                  # environment holds api_key_env's variable, read where the provider names it.
                  # It would also start an app-server daemon (in a session of its own) that outlives it.
                  "codex": ["resume", "--last", "--include-non-interactive", "--disable", "daemon_auto_start",
                            *_codex_endpoint(_Turn("", True, None, agent.get("api_base"), None, "?"),
                                             key_variable=agent.get("api_key_env"))],
                  "gemini": ["--resume", "latest"], "opencode": ["--continue"]}
    return [PRESET_TABLE[preset].executable, *continuing.get(preset, [])]


def redirect_prompt(task: str, summary: str, instruction: str) -> str:
    """The prompt that restarts a CLI with no continue option: the task, the work so far, the new instruction."""
    done = summary.strip() or "(no summary was recorded; the worktree holds the work so far)"
    return (f"{task.rstrip()}\n\n"
            "## Work done so far\n"
            "You already worked on this task in this worktree; your changes are in its files.\n"
            f"{done}\n\n"
            "## New instruction from the conductor\n"
            f"{instruction.strip()}\n")


def _key_value(agent: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The value of the variable api_key_env names; PresetError when it names an unset one."""
    env_name = agent.get("api_key_env")
    if not env_name:
        return None
    value = environ.get(env_name)
    if not value:
        raise PresetError(f"agent {agent.get('name')!r}: api_key_env names {env_name}, which is not set.\n"
                          f"Export it where you start orchestra: export {env_name}=...")
    return value


def _arg(text: str) -> str:
    """text as a positional argument: a leading '-' would be read as an option, so a space goes first."""
    return f" {text}" if text.startswith("-") else text


def _custom(agent: Mapping[str, Any], text: str, key: str | None) -> Invocation:
    """A user's shell command; {prompt} becomes the quoted prompt, the key keeps its own name."""
    command = str(agent["command"]).replace("{prompt}", shlex.quote(text))
    env = {name: value for name, value in (("ORCHESTRA_MODEL", agent.get("model")),
                                           ("ORCHESTRA_API_BASE", agent.get("api_base"))) if value}
    secrets: tuple[str, ...] = ()
    if key is not None:
        env[agent["api_key_env"]] = key
        secrets = (agent["api_key_env"],)
    return Invocation(("/bin/sh", "-c", command), MappingProxyType(env), False, secrets)


def _model_flag(turn: _Turn, flag: str = "--model") -> list[str]:
    return [flag, turn.model] if turn.model else []


def _keyed(env: dict[str, str], key: str | None, *names: str) -> tuple[str, ...]:
    """Put the key under each name the CLI reads; return those names as secrets."""
    if key is None:
        return ()
    env.update(dict.fromkeys(names, key))
    return names


def _claude(turn: _Turn) -> _Built:
    # -p prints the answer and exits; --continue (-c) resumes the latest conversation in this
    # directory, which is the run's worktree; acceptEdits approves file edits, nothing else.
    # With an api_base nothing goes to Anthropic's own hosts: without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC
    # it still sends telemetry and error reports there (five connections a turn in 2.1).
    argv = ["claude", "-p", *(["--continue"] if turn.resumes else []),
            "--permission-mode", "acceptEdits", *_model_flag(turn), _arg(turn.text)]
    env: dict[str, str] = {}
    if turn.api_base:
        env.update(ANTHROPIC_BASE_URL=turn.api_base, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
    return argv, env, _keyed(env, turn.key, "ANTHROPIC_API_KEY")


def _codex(turn: _Turn) -> _Built:
    # exec never asks for approval; workspace-write lets it edit the worktree (and run commands in
    # codex's own sandbox). Options go before `resume`: a resumed session keeps only its context;
    # `exec resume --last` picks the newest session of this directory, the run's worktree.
    argv = ["codex", "exec", "--sandbox", "workspace-write", *_model_flag(turn), *_codex_endpoint(turn), *_CODEX_QUIET,
            *(["resume", "--last"] if turn.resumes else []), _arg(turn.text)]
    # CODEX_API_KEY is what `codex exec` reads (0.171 ignores OPENAI_API_KEY there); OPENAI_API_KEY is
    # what older releases and the interactive CLI's OpenAI provider read.
    env: dict[str, str] = {}
    return argv, env, _keyed(env, turn.key, "OPENAI_API_KEY", "CODEX_API_KEY")


# What codex fetches besides the model, switched off: analytics (ab.chatgpt.com), plugins and apps (chatgpt.com,
# github.com), in-app update checks.
_CODEX_QUIET = ("-c", "analytics.enabled=false", "--disable", "plugins", "--disable", "remote_plugin",
                "--disable", "apps", "--disable", "in_app_updates")

CODEX_PROVIDER = "orchestra"  # the model provider the codex preset defines for an agent's api_base


def _codex_endpoint(turn: _Turn, key_variable: str | None = None) -> list[str]:
    """The -c options that send codex to api_base: codex (0.171) ignores OPENAI_BASE_URL.

    The built-in openai provider accepts only a new base_url, so an api_base gets a provider of its
    own, which also skips the WebSocket transport (an OpenAI-only service that codex otherwise tries
    five times before HTTP) and keeps codex's retries short. The key is read from CODEX_API_KEY, never
    written on the command line; without api_key_env, codex's own login is sent to api_base.
    """
    if not turn.api_base:
        return []
    key_variable = key_variable or ("CODEX_API_KEY" if turn.key else None)
    auth = f"env_key={json.dumps(key_variable)}" if key_variable else "requires_openai_auth=true"
    provider = (f'{{name={json.dumps(f"orchestra ({turn.agent})")}, base_url={json.dumps(turn.api_base)}, {auth}, '
                'wire_api="responses", supports_websockets=false, request_max_retries=2, stream_max_retries=2}')
    return ["-c", f"model_providers.{CODEX_PROVIDER}={provider}", "-c", f'model_provider="{CODEX_PROVIDER}"']


def _aider(turn: _Turn) -> _Built:
    if not (turn.model or turn.key or turn.api_base):
        # Aider would pick a model from the provider keys in its environment, and there are none in the
        # jail but api_key_env's; with none it offers an OpenRouter sign-in, which --yes-always accepts.
        # (A key or an api_base without a model is refused by _aider_key_name.)
        raise PresetError(f"agent {turn.agent!r}: aider needs a model: set model = \"<provider>/<model>\", e.g. "
                          '"anthropic/claude-sonnet-4-5", and api_key_env naming its key (with neither, aider '
                          "offers an OpenRouter sign-in in a browser and waits 5 minutes for it)")
    # --no-auto-commits/--no-dirty-commits: orchestra commits what the agent leaves, under the
    # agent's name, so aider does not commit (or rewrite authors) itself. --no-gitignore: aider
    # would otherwise add .aider* to the user's .gitignore, a change nobody asked for.
    # Under --yes-always aider also says yes to "open the docs for this unknown model?" (a browser
    # per run) and to "add this URL?" (which installs playwright): --no-show-model-warnings and
    # --no-detect-urls keep those questions from being asked; BROWSER=true makes any other page it
    # opens (URLs in API errors) a no-op. Linting would spend model turns on style; the gates verify.
    argv = ["aider", "--yes-always", "--no-pretty", "--no-stream", "--no-fancy-input",
            "--no-check-update", "--no-show-release-notes", "--no-analytics", "--no-show-model-warnings",
            "--no-detect-urls", "--no-auto-lint", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore",
            *(["--restore-chat-history"] if turn.resumes else []), *_model_flag(turn)]
    if turn.api_base:
        argv += ["--openai-api-base", turn.api_base]
    env: dict[str, str] = {"BROWSER": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    secrets = _keyed(env, turn.key, _aider_key_name(turn)) if (turn.key or turn.api_base) else ()
    # The = form keeps a message that starts with '-' from being read as an option.
    return [*argv, f"--message={turn.text}"], env, secrets


def _aider_key_name(turn: _Turn) -> str:
    """The variable aider (through litellm) reads the key from, chosen by the model's provider."""
    provider = model_provider(turn.model)
    if turn.api_base:
        if provider not in (None, "openai") or not turn.model:
            raise PresetError(f"agent {turn.agent!r}: aider sends api_base to an OpenAI-compatible "
                              'server only: set model = "openai/<model name>"')
        return "OPENAI_API_KEY"
    if provider not in PROVIDER_KEYS:
        raise PresetError(f"agent {turn.agent!r}: aider needs to know which provider api_key_env is for: "
                          'set model with a provider prefix, e.g. "anthropic/claude-sonnet-4-5" or '
                          '"openai/gpt-4.1"')
    return PROVIDER_KEYS[provider]


def _gemini(turn: _Turn) -> _Built:
    # --prompt runs headless; --resume latest continues this project's (worktree's) latest session;
    # auto_edit approves edits only (headless, tools that would ask, such as the shell, are not offered).
    # Trusting the workspace keeps that mode in a new worktree: 0.61 refuses an untrusted folder (exit 55).
    # An api_base works only with an auth type chosen in ~/.gemini/settings.json (security.auth.selectedType
    # "gemini-api-key", what signing in with a key writes): from the environment alone 0.61 treats a base
    # URL as a "gateway" its headless mode rejects ("Invalid auth method selected.", exit 41). Without a
    # model it first asks a routing model (gemini-*-flash-lite) to classify the prompt, so set one.
    argv = ["gemini", *(["--resume", "latest"] if turn.resumes else []),
            "--approval-mode", "auto_edit", *_model_flag(turn), "--prompt", _arg(turn.text)]
    env = {"GEMINI_CLI_TRUST_WORKSPACE": "true"}
    if turn.api_base:
        env["GOOGLE_GEMINI_BASE_URL"] = turn.api_base  # a Gemini-API endpoint, not an OpenAI one
    return argv, env, _keyed(env, turn.key, "GEMINI_API_KEY")


def _opencode(turn: _Turn) -> _Built:
    # `run` is non-interactive and refuses (never waits on) permission requests; --continue resumes the
    # latest session of this directory. It joins its message words with spaces but quotes any word that
    # holds a space (escaping its quotes), so the prompt goes after `--` split at its spaces: joined
    # again it is the prompt exactly (a word starting with '-' is safe after `--`). A --title keeps it
    # from spending a model call on naming the session.
    argv = ["opencode", "run", *(["--continue"] if turn.resumes else []), *_model_flag(turn), "--title", "",
            "--", *turn.text.split(" ")]
    if not (turn.api_base or turn.key):
        return argv, {}, ()
    provider = model_provider(turn.model) if turn.model and "/" in turn.model else None
    if provider is None or turn.model is None:
        raise PresetError(f"agent {turn.agent!r}: opencode applies api_base and api_key_env to one provider: "
                          'set model = "<provider>/<model>", e.g. "anthropic/claude-sonnet-4-5"')
    options = {"baseURL": turn.api_base} if turn.api_base else {}
    if turn.key:
        options["apiKey"] = turn.key
    settings: dict[str, Any] = {"options": options}
    env: dict[str, str] = {}
    if turn.api_base:
        # The endpoint serves models opencode's catalogue does not know: declare this one, and make it the
        # small model too (else titles and summaries go to the provider's own small model, elsewhere).
        # For openai, an api_base is an OpenAI-compatible chat-completions server, as for aider (opencode's
        # openai provider would use the Responses API); the catalogue is not fetched from the network.
        settings["models"] = {turn.model.split("/", 1)[1]: {}}
        if provider == "openai":
            settings["npm"] = "@ai-sdk/openai-compatible"
        env["OPENCODE_DISABLE_MODELS_FETCH"] = "1"
    # OPENCODE_CONFIG_CONTENT is inline config merged over the user's; it works for any provider.
    config = {"provider": {provider: settings}, **({"small_model": turn.model} if turn.api_base else {})}
    env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
    return argv, env, ("OPENCODE_CONFIG_CONTENT",) if turn.key else ()


_BUILDERS: Mapping[str, Callable[[_Turn], _Built]] = MappingProxyType({
    "claude": _claude, "codex": _codex, "aider": _aider, "gemini": _gemini, "opencode": _opencode,
})


def _aider_interactive(turn: _Turn) -> list[str]:
    # The one-shot flags without --message (which answers once and exits) and --yes-always (the conductor
    # is at the keyboard to answer); aider takes no first prompt in its interactive mode.
    argv, _, _ = _aider(turn)
    return [arg for arg in argv[:-1] if arg not in ("--yes-always", "--no-fancy-input")]


# Each CLI's interactive mode with its first prompt, continuing its own conversation on a redirect; the same
# edit-only approvals as one-shot, the rest is asked of the conductor in the session.
_INTERACTIVE_ARGV: Mapping[str, Callable[[_Turn], list[str]]] = MappingProxyType({
    # A positional prompt starts the REPL with it (-p would print the answer and exit).
    "claude": lambda turn: ["claude", *(["--continue"] if turn.resumes else []), "--permission-mode", "acceptEdits",
                            *_model_flag(turn), _arg(turn.text)],
    # The TUI takes its first prompt as a positional; `resume --last` continues this worktree's session.
    "codex": lambda turn: ["codex", "--sandbox", "workspace-write", *_model_flag(turn), *_codex_endpoint(turn),
                           *_CODEX_QUIET, *(["resume", "--last", "--include-non-interactive"] if turn.resumes else []),
                           _arg(turn.text)],
    # --prompt-interactive runs the prompt and stays in the interactive session.
    "gemini": lambda turn: ["gemini", *(["--resume", "latest"] if turn.resumes else []), "--approval-mode",
                            "auto_edit", *_model_flag(turn), "--prompt-interactive", _arg(turn.text)],
    # The TUI's --prompt is its first message.
    "opencode": lambda turn: ["opencode", *(["--continue"] if turn.resumes else []), *_model_flag(turn),
                              "--prompt", turn.text],
    "aider": _aider_interactive,
})


# How the presets that can review run as reviewers: non-interactive, unable to write (their own read-only
# modes, inside orchestra's read-only jail), the answer on stdout. The environment and keys are the preset's.
_REVIEW_ARGV: Mapping[str, Callable[[_Turn], list[str]]] = MappingProxyType({
    # No session is kept: it would be the "most recent conversation" in the worktree that the author's
    # --continue resumes when both share ~/.claude.
    "claude": lambda turn: ["claude", "-p", "--permission-mode", "plan", "--output-format", "json",
                            "--no-session-persistence", *_model_flag(turn), _arg(turn.text)],
    "codex": lambda turn: ["codex", "exec", "--sandbox", "read-only", "--skip-git-repo-check", "--ephemeral",
                           *_model_flag(turn), *_codex_endpoint(turn), *_CODEX_QUIET, _arg(turn.text)],
    # Headless, "default" offers gemini no write tools at all ("plan" would still offer replace and write_file).
    "gemini": lambda turn: ["gemini", "--approval-mode", "default", "--output-format", "json", *_model_flag(turn),
                            "--prompt", _arg(turn.text)],
})


def review_invocation(agent: Mapping[str, Any], prompt: str, environ: Mapping[str, str]) -> Invocation:
    """The Invocation of a cli or shell reviewer asked prompt (a custom command gets it as {prompt} and on
    stdin); PresetError when the preset cannot review."""
    name = agent.get("name") or "?"
    if agent.get("kind") == "shell" or agent.get("command"):
        key = _key_value(agent, environ) if agent.get("api_key_env") else None
        return _custom(agent, prompt, key)
    preset = agent.get("preset")
    if preset not in _REVIEW_ARGV:
        raise PresetError(f"agent {name!r}: preset {preset!r} cannot review non-interactively; reviewers are llm "
                          f"agents, commands, or the presets {', '.join(_REVIEW_ARGV)}")
    turn = _Turn(text=prompt, resumes=False, model=agent.get("model"), api_base=agent.get("api_base"),
                 key=_key_value(agent, environ), agent=name)
    _, env, secrets = _BUILDERS[preset](turn)
    return Invocation(tuple(_REVIEW_ARGV[preset](turn)), MappingProxyType(env), False, secrets)


# Every variable a provider or preset reads its key from: kept out of gates and redacted everywhere.
KEY_NAMES = frozenset([*PROVIDER_KEYS.values(), *(key for preset in PRESET_TABLE.values() for key in preset.key_names)])


def stall_lines(agent: Mapping[str, Any]) -> tuple[str, ...]:
    """The output patterns that mean agent's CLI is stuck (none for a custom command)."""
    preset = PRESET_TABLE.get(agent.get("preset") or "")
    return preset.stalls if preset is not None and not agent.get("command") else ()


def recognised_failure(agent: Mapping[str, Any], lines: list[str]) -> str | None:
    """The last output line that says agent's turn failed (its preset's failure patterns), or None."""
    import re

    from orchestra.core.base.output import strip_escapes
    preset = PRESET_TABLE.get(agent.get("preset") or "")
    if preset is None or not preset.failures or agent.get("command"):
        return None
    patterns = [re.compile(pattern, re.IGNORECASE) for pattern in preset.failures]
    for line in reversed(lines[-200:]):
        text = strip_escapes(line).strip()
        if any(pattern.search(text) for pattern in patterns):
            return text[:300]
    return None


def home_files(agent: Mapping[str, Any]) -> dict[str, str]:
    """Files a preset's CLI should find in the run's private home (path relative to it → text), written
    before it starts and never over one that is there.

    Aider looks up its model's price and context window in litellm's price list, which it downloads from
    GitHub (despite LITELLM_LOCAL_MODEL_COST_MAP, which only litellm itself honours) unless the model is in
    a `.aider.model.metadata.json` in the home; an entry naming the model stops the download, and litellm's
    own bundled list still answers for the numbers."""
    if agent.get("preset") != "aider" or agent.get("command") or not agent.get("model"):
        return {}
    model = str(agent["model"])
    entry = {"litellm_provider": model_provider(model) or "openai", "mode": "chat"}
    return {".aider.model.metadata.json": json.dumps({model: entry}, indent=1) + "\n"}


def interactive_environment(agent: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """What the agent's CLI opened by hand (interactive_command) needs on top of the user's environment to
    reach the same endpoint with the same key as its runs: the preset's own variables (ANTHROPIC_BASE_URL,
    GOOGLE_GEMINI_BASE_URL, the key under the name the CLI reads, …); {} when it needs none or cannot have
    them (then the CLI uses its own sign-in)."""
    preset = agent.get("preset")
    if agent.get("kind") != "cli" or agent.get("command") or preset not in _BUILDERS:
        return {}
    try:
        key = _key_value(agent, environ)
        turn = _Turn(text="", resumes=True, model=agent.get("model"), api_base=agent.get("api_base"), key=key,
                     agent=agent.get("name") or "?")
        _, env, _ = _BUILDERS[preset](turn)
    except PresetError:
        return {}
    return env
