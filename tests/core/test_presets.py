"""Presets: the argv, environment and secrets of one turn of each coding-agent CLI, and custom commands."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from orchestra.core.base.errors import OrchestraError
from orchestra.core.agents.presets import PRESET_TABLE, Invocation, PresetError, cli_invocation, model_provider
from orchestra.core.agents.presets import redirect_prompt
from orchestra.core.score import PRESETS

TASK = "Fix mean() in calc/stats.py.\nVerify with: pytest -q"
FIX = "Also handle an empty list."
KEY = "sk-test-not-a-real-key"


def agent(**fields: Any) -> dict[str, Any]:
    """An agent_config dict as orchestra hands it over: every key present, absent values None."""
    base = dict.fromkeys(("command", "preset", "model", "role", "api_base", "api_key_env"))
    return {**base, "name": "a1", "kind": "cli", "timeout": 3600.0, **fields}


# Aider must not stop to ask, open a browser or install anything: see presets._aider.
AIDER_UNATTENDED = ("--yes-always", "--no-pretty", "--no-stream", "--no-fancy-input", "--no-check-update",
                    "--no-show-release-notes", "--no-analytics", "--no-show-model-warnings", "--no-detect-urls",
                    "--no-auto-lint", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore")
AIDER_ENV = {"BROWSER": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
AIDER_MODEL = "anthropic/claude-sonnet-4-5"  # aider without a model (or key) is refused: see presets._aider
# Codex sends nothing but model requests: no analytics, plugins, apps or update checks (presets._CODEX_QUIET).
CODEX_QUIET = ("-c", "analytics.enabled=false", "--disable", "plugins", "--disable", "remote_plugin",
               "--disable", "apps", "--disable", "in_app_updates")

FIRST_AND_REDIRECT = [
    ("claude",
     ("claude", "-p", "--permission-mode", "acceptEdits", TASK),
     ("claude", "-p", "--continue", "--permission-mode", "acceptEdits", FIX)),
    ("codex",
     ("codex", "exec", "--sandbox", "workspace-write", *CODEX_QUIET, TASK),
     ("codex", "exec", "--sandbox", "workspace-write", *CODEX_QUIET, "resume", "--last", FIX)),
    ("aider",
     ("aider", *AIDER_UNATTENDED, "--model", AIDER_MODEL, f"--message={TASK}"),
     ("aider", *AIDER_UNATTENDED, "--restore-chat-history", "--model", AIDER_MODEL, f"--message={FIX}")),
    ("gemini",
     ("gemini", "--approval-mode", "auto_edit", "--prompt", TASK),
     ("gemini", "--resume", "latest", "--approval-mode", "auto_edit", "--prompt", FIX)),
    ("opencode",  # the words after `--`: opencode joins them with spaces (and would quote a word with one)
     ("opencode", "run", "--title", "", "--", *TASK.split(" ")),
     ("opencode", "run", "--continue", "--title", "", "--", *FIX.split(" "))),
]


@pytest.mark.parametrize(("preset", "first", "redirected"), FIRST_AND_REDIRECT,
                         ids=[row[0] for row in FIRST_AND_REDIRECT])
def test_each_preset_runs_headless_and_continues_its_own_conversation_on_redirect(
        preset: str, first: tuple[str, ...], redirected: tuple[str, ...]) -> None:
    config = agent(preset=preset, model=AIDER_MODEL if preset == "aider" else None)
    start = cli_invocation(config, TASK, {})
    again = cli_invocation(config, TASK, {}, redirect=FIX, summary="changed stats.py")

    assert start.argv == first and start.resumes is False
    assert again.argv == redirected and again.resumes is True
    assert start.argv[0] == PRESET_TABLE[preset].executable
    assert start.secret_names == again.secret_names == ()


def test_the_preset_table_covers_exactly_the_presets_a_score_accepts() -> None:
    assert tuple(PRESET_TABLE) == PRESETS
    for name, preset in PRESET_TABLE.items():
        assert preset.name == name and preset.executable and preset.install and preset.key_names
        assert preset.docs.startswith("https://")


MODEL_FLAGS = [
    ("claude", "claude-sonnet-4-5", ["--model", "claude-sonnet-4-5"]),
    ("codex", "gpt-5-codex", ["--model", "gpt-5-codex"]),
    ("aider", "anthropic/claude-sonnet-4-5", ["--model", "anthropic/claude-sonnet-4-5"]),
    ("gemini", "gemini-2.5-pro", ["--model", "gemini-2.5-pro"]),
    ("opencode", "anthropic/claude-sonnet-4-5", ["--model", "anthropic/claude-sonnet-4-5"]),
]


@pytest.mark.parametrize(("preset", "model", "flag"), MODEL_FLAGS, ids=[row[0] for row in MODEL_FLAGS])
def test_a_model_becomes_the_presets_model_flag_on_every_turn(preset: str, model: str, flag: list[str]) -> None:
    for redirect in (None, FIX):
        argv = list(cli_invocation(agent(preset=preset, model=model), TASK, {}, redirect=redirect).argv)
        at = argv.index(flag[0])
        assert argv[at:at + 2] == flag


def test_codex_puts_its_options_before_resume_because_a_resumed_session_keeps_only_its_context() -> None:
    argv = cli_invocation(agent(preset="codex", model="gpt-5"), TASK, {}, redirect=FIX).argv
    assert argv.index("--model") < argv.index("resume") and argv.index("--sandbox") < argv.index("resume")


KEYED = [
    # preset, model, api_base, extra env expected (KEY stands for the key's value), secret names
    ("claude", None, None, {"ANTHROPIC_API_KEY": KEY}, ("ANTHROPIC_API_KEY",)),
    ("claude", None, "https://gateway.example/anthropic",
     {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": "https://gateway.example/anthropic",
      "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
     ("ANTHROPIC_API_KEY",)),
    ("codex", None, "http://localhost:8000/v1",  # the endpoint goes on the command line (codex_endpoint)
     {"OPENAI_API_KEY": KEY, "CODEX_API_KEY": KEY}, ("OPENAI_API_KEY", "CODEX_API_KEY")),
    ("aider", "openai/qwen-coder", None, {"OPENAI_API_KEY": KEY, **AIDER_ENV}, ("OPENAI_API_KEY",)),
    ("aider", "anthropic/claude-sonnet-4-5", None, {"ANTHROPIC_API_KEY": KEY, **AIDER_ENV}, ("ANTHROPIC_API_KEY",)),
    ("aider", "openrouter/qwen/qwen3-coder", None, {"OPENROUTER_API_KEY": KEY, **AIDER_ENV},
     ("OPENROUTER_API_KEY",)),
    ("aider", "gpt-4.1", None, {"OPENAI_API_KEY": KEY, **AIDER_ENV}, ("OPENAI_API_KEY",)),
    ("gemini", None, None, {"GEMINI_API_KEY": KEY, "GEMINI_CLI_TRUST_WORKSPACE": "true"}, ("GEMINI_API_KEY",)),
]


@pytest.mark.parametrize(("preset", "model", "api_base", "env", "secrets"), KEYED)
def test_the_key_goes_under_the_name_the_cli_reads_and_is_marked_secret(
        preset: str, model: str | None, api_base: str | None, env: dict[str, str],
        secrets: tuple[str, ...]) -> None:
    config = agent(preset=preset, model=model, api_base=api_base, api_key_env="MY_KEY")

    turn = cli_invocation(config, TASK, {"MY_KEY": KEY, "UNRELATED": "x"})

    assert dict(turn.env) == env and turn.secret_names == secrets
    assert KEY not in " ".join(turn.argv)


def test_aider_takes_an_api_base_as_its_openai_base_flag() -> None:
    config = agent(preset="aider", model="openai/qwen2.5-coder", api_base="http://127.0.0.1:8080/v1",
                   api_key_env="MY_KEY")
    turn = cli_invocation(config, TASK, {"MY_KEY": KEY})
    at = turn.argv.index("--openai-api-base")
    assert turn.argv[at + 1] == "http://127.0.0.1:8080/v1" and dict(turn.env) == {"OPENAI_API_KEY": KEY, **AIDER_ENV}


def test_gemini_takes_an_api_base_as_its_gemini_base_url_variable() -> None:
    turn = cli_invocation(agent(preset="gemini", api_base="https://proxy.example"), TASK, {})
    assert turn.env["GOOGLE_GEMINI_BASE_URL"] == "https://proxy.example" and turn.secret_names == ()


def test_opencode_gets_base_url_and_key_as_inline_config_for_the_models_provider() -> None:
    config = agent(preset="opencode", model="openai/qwen-coder", api_base="http://localhost:1234/v1",
                   api_key_env="MY_KEY")
    turn = cli_invocation(config, TASK, {"MY_KEY": KEY})
    assert json.loads(turn.env["OPENCODE_CONFIG_CONTENT"]) == {
        "provider": {"openai": {"options": {"baseURL": "http://localhost:1234/v1", "apiKey": KEY},
                                "models": {"qwen-coder": {}}, "npm": "@ai-sdk/openai-compatible"}},
        "small_model": "openai/qwen-coder"}
    assert turn.env["OPENCODE_DISABLE_MODELS_FETCH"] == "1"
    assert turn.secret_names == ("OPENCODE_CONFIG_CONTENT",)
    base_only = cli_invocation(agent(preset="opencode", model="openai/x", api_base="http://h/v1"), TASK, {})
    assert base_only.secret_names == () and "apiKey" not in base_only.env["OPENCODE_CONFIG_CONTENT"]


REFUSED = [
    (agent(preset="claude", api_key_env="MISSING_KEY"), "MISSING_KEY", "export MISSING_KEY="),
    (agent(preset="aider", api_key_env="MY_KEY"), "provider prefix", 'model'),
    (agent(preset="aider", model="anthropic/claude-x", api_base="http://h/v1"), "OpenAI-compatible",
     "openai/"),
    (agent(preset="opencode", api_base="http://h/v1"), "<provider>/<model>", "opencode"),
    (agent(preset="opencode", model="bare-model", api_key_env="MY_KEY"), "<provider>/<model>", "a1"),
    (agent(preset="vim"), "preset", "claude, codex, aider, gemini, opencode"),
    (agent(preset="aider"), "aider needs a model", "OpenRouter sign-in"),
    (agent(), "preset", "or a command"),
]


@pytest.mark.parametrize(("config", "what", "hint"), REFUSED)
def test_a_configuration_that_cannot_work_is_refused_with_what_to_change(
        config: dict[str, Any], what: str, hint: str) -> None:
    with pytest.raises(PresetError) as refused:
        cli_invocation(config, TASK, {"MY_KEY": KEY})
    assert what in str(refused.value) and hint in str(refused.value)
    assert isinstance(refused.value, OrchestraError)


def test_an_empty_key_variable_counts_as_unset() -> None:
    with pytest.raises(PresetError, match="export EMPTY_KEY="):
        cli_invocation(agent(preset="codex", api_key_env="EMPTY_KEY"), TASK, {"EMPTY_KEY": ""})


@pytest.mark.parametrize("preset", PRESETS)
def test_a_prompt_starting_with_a_dash_cannot_be_read_as_an_option(preset: str) -> None:
    argv = cli_invocation(agent(preset=preset, model=AIDER_MODEL if preset == "aider" else None), "--help me", {}).argv
    if "--" in argv:  # opencode: everything after `--` is the message's words
        assert argv[argv.index("--") + 1:] == ("--help", "me")
        return
    assert not any(arg.startswith("--help") for arg in argv)
    assert any(arg.endswith("--help me") for arg in argv)


def run_shell(turn: Invocation) -> str:
    assert turn.argv[:2] == ("/bin/sh", "-c")
    return subprocess.run(list(turn.argv), capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("prompt", [TASK, "it's $HOME and `rm -rf /` ; \"quoted\" \\ done", "-x"])
def test_a_custom_command_gets_the_prompt_shell_quoted_in_place_of_the_placeholder(prompt: str) -> None:
    turn = cli_invocation(agent(command="printf '%s' {prompt}"), prompt, {})
    assert run_shell(turn) == prompt and turn.resumes is False


def test_a_custom_command_without_placeholder_is_left_as_written() -> None:
    turn = cli_invocation(agent(command="my-agent --go"), TASK, {})
    assert turn.argv == ("/bin/sh", "-c", "my-agent --go") and dict(turn.env) == {}


def test_a_custom_command_starts_again_on_redirect_with_task_summary_and_instruction() -> None:
    turn = cli_invocation(agent(command="printf '%s' {prompt}", preset="claude"), TASK, {},
                          redirect=FIX, summary="mean() now divides by len(values)")
    said = run_shell(turn)
    assert turn.resumes is False
    assert said == redirect_prompt(TASK, "mean() now divides by len(values)", FIX)
    assert said.index(TASK) < said.index("mean() now divides") < said.index(FIX)


def test_a_custom_command_gets_its_key_under_its_own_name_and_model_and_base_as_orchestra_variables() -> None:
    config = agent(command="run-it", api_key_env="MY_KEY", model="m", api_base="http://h/v1")
    turn = cli_invocation(config, TASK, {"MY_KEY": KEY})
    assert dict(turn.env) == {"MY_KEY": KEY, "ORCHESTRA_MODEL": "m", "ORCHESTRA_API_BASE": "http://h/v1"}
    assert turn.secret_names == ("MY_KEY",)


def test_redirect_prompt_without_a_summary_points_at_the_worktree() -> None:
    text = redirect_prompt("Do X.", "  ", "Now Y.")
    assert text.startswith("Do X.") and "worktree" in text and text.rstrip().endswith("Now Y.")


@pytest.mark.parametrize(("model", "provider"), [
    ("openai/gpt-4o", "openai"), ("Anthropic/claude-x", "anthropic"), ("gpt-4.1", "openai"),
    ("o3-mini", "openai"), ("claude-sonnet-4-5", "anthropic"), ("gemini-2.5-pro", "gemini"),
    ("ollama/llama3", "ollama"), ("mystery", None), (None, None), ("", None),
])
def test_model_provider(model: str | None, provider: str | None) -> None:
    assert model_provider(model) == provider


def test_invocations_are_frozen_and_their_env_is_read_only() -> None:
    turn = cli_invocation(agent(preset="gemini"), TASK, {})
    with pytest.raises(AttributeError):
        turn.argv = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        turn.env["X"] = "y"  # type: ignore[index]


def test_codex_is_sent_to_api_base_by_a_provider_of_its_own_on_the_command_line() -> None:
    argv = list(cli_invocation(agent(preset="codex", api_base="http://127.0.0.1:8000/v1", api_key_env="MY_KEY"),
                               TASK, {"MY_KEY": KEY}).argv)
    provider = argv[argv.index("-c") + 1]
    assert provider.startswith("model_providers.orchestra=") and '"http://127.0.0.1:8000/v1"' in provider
    assert 'env_key="CODEX_API_KEY"' in provider and "supports_websockets=false" in provider
    assert 'model_provider="orchestra"' in argv and KEY not in " ".join(argv)


def test_codex_opened_by_hand_sees_the_runs_exec_sessions() -> None:
    from orchestra.core.agents.presets import interactive_command
    assert interactive_command(agent(preset="codex"))[:4] == ["codex", "resume", "--last", "--include-non-interactive"]


def test_aider_finds_its_model_in_its_home_so_it_downloads_no_price_list() -> None:
    from orchestra.core.agents.presets import home_files
    files = home_files(agent(preset="aider", model="openai/qwen-coder"))
    assert json.loads(files[".aider.model.metadata.json"]) == {"openai/qwen-coder": {"litellm_provider": "openai",
                                                                                      "mode": "chat"}}
    assert home_files(agent(preset="claude", model="x")) == {} and home_files(agent(command="aider")) == {}


def test_a_cli_opened_by_hand_reaches_the_runs_endpoint_with_its_key() -> None:
    from orchestra.core.agents.presets import interactive_environment
    claude = agent(preset="claude", api_base="http://127.0.0.1:8080", api_key_env="MY_KEY")
    assert interactive_environment(claude, {"MY_KEY": KEY}) == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8080", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "ANTHROPIC_API_KEY": KEY}
    gemini = agent(preset="gemini", api_base="http://127.0.0.1:9")
    assert interactive_environment(gemini, {})["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:9"
    assert interactive_environment(agent(preset="claude", api_key_env="UNSET"), {}) == {}  # its own sign-in
    assert interactive_environment(agent(command="my-agent"), {}) == {}
