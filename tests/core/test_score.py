"""The score: orchestra.toml parsing, validation messages with lines and keys, and the starter."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest

from orchestra.core.score import (
    STARTER_TOML,
    Agent,
    Check,
    ConfigError,
    Spec,
    load_score,
    parse_score,
)
from orchestra.core.score.locate import LineIndex

FULL = """\
[orchestra]
target = "develop"

[ui]
theme = "orchestra-light"

[keymap]
"run.accept" = "y,enter"
"run.reject" = "n"

[[agents]]
name = "fixer"
kind = "shell"
command = "python fix.py"
role = "code"
timeout = 1800

[[agents]]
name = "claude"
kind = "cli"
preset = "claude"
api_key_env = "ANTHROPIC_API_KEY"

[[agents]]
name = "gpt"
kind = "llm"
model = "openai/gpt-4o"
api_base = "http://localhost:4000"
api_key_env = "OPENAI_API_KEY"
timeout = 90.5

[[specs]]
id = "fix-bug"
intent = "Make the failing test pass"
allow = ["src/**", "tests/**"]
deny = ["src/secrets/**"]
verify = ["pytest -q", { name = "lint", command = "ruff check .", junit = "report.xml", timeout = 120 }]
agents = ["gpt", "fixer"]

[[specs]]
id = "docs"
intent = "Document the API"
"""


def write(tmp_path: Path, text: str) -> Path:
    """Write text to tmp_path/orchestra.toml and return the path."""
    path = tmp_path / "orchestra.toml"
    path.write_text(text)
    return path


def error_for(text: str) -> ConfigError:
    """The ConfigError parse_score raises for text, reported as plain `orchestra.toml`."""
    with pytest.raises(ConfigError) as caught:
        parse_score(text, Path("orchestra.toml"))
    return caught.value


# --- valid files ---------------------------------------------------------------------------


def test_full_file_round_trips_into_dataclasses(tmp_path: Path) -> None:
    score = load_score(write(tmp_path, FULL))
    assert score.path == tmp_path / "orchestra.toml"
    assert score.target == "develop"
    assert score.theme == "orchestra-light"
    assert dict(score.keymap) == {"run.accept": "y,enter", "run.reject": "n"}
    assert score.agents == (
        Agent(name="fixer", kind="shell", command="python fix.py", role="code", timeout=1800.0),
        Agent(name="claude", kind="cli", preset="claude", api_key_env="ANTHROPIC_API_KEY"),
        Agent(name="gpt", kind="llm", model="openai/gpt-4o", api_base="http://localhost:4000",
              api_key_env="OPENAI_API_KEY", timeout=90.5),
    )
    assert score.specs[0] == Spec(
        id="fix-bug", intent="Make the failing test pass", allow=("src/**", "tests/**"),
        deny=("src/secrets/**",), agents=("gpt", "fixer"),
        verify=(Check(name="pytest", command="pytest -q"),
                Check(name="lint", command="ruff check .", junit="report.xml", timeout=120.0)),
    )
    assert score.specs[1] == Spec(id="docs", intent="Document the API")
    assert isinstance(score.agents[0].timeout, float)


def test_empty_file_is_an_empty_score() -> None:
    score = parse_score("", Path("orchestra.toml"))
    assert (score.target, score.theme, score.agents, score.specs, dict(score.keymap)) == (
        None, None, (), (), {})


def test_score_is_immutable(tmp_path: Path) -> None:
    score = load_score(write(tmp_path, FULL))
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.target = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        score.keymap["run.accept"] = "z"  # type: ignore[index]
    assert hash(score) == hash(load_score(tmp_path / "orchestra.toml"))


def test_lookup_and_agents_for(tmp_path: Path) -> None:
    score = load_score(write(tmp_path, FULL))
    assert score.agent("claude").preset == "claude"
    assert score.spec("docs").intent == "Document the API"
    assert [a.name for a in score.agents_for(score.spec("fix-bug"))] == ["gpt", "fixer"]
    assert score.agents_for(score.spec("docs")) == score.agents
    with pytest.raises(KeyError):
        score.agent("nobody")
    with pytest.raises(KeyError):
        score.spec("nothing")


def test_starter_loads(tmp_path: Path) -> None:
    score = load_score(write(tmp_path, STARTER_TOML))
    assert [a.kind for a in score.agents] == ["shell"]
    assert "$ORCHESTRA_TASK" in score.agents[0].command
    spec = score.specs[0]
    assert spec.intent and spec.allow and spec.deny and spec.verify
    assert score.agents_for(spec) == score.agents
    assert score.target == "main" and score.theme == "orchestra-dark"


def test_starter_commented_examples_load_when_uncommented(tmp_path: Path) -> None:
    uncommented = re.sub(r'^#(?=[\[a-z"])', "", STARTER_TOML, flags=re.MULTILINE)
    score = load_score(write(tmp_path, uncommented))
    assert score.agent("claude").preset == "claude"
    assert score.agent("sonnet").model == "anthropic/claude-sonnet-4-5"
    assert score.agent("sonnet").api_key_env == "ANTHROPIC_API_KEY"
    assert score.agent("critic").role == "review" and score.review.agents == ("critic",)
    assert [a.name for a in score.reviewers_for(score.specs[0])] == ["critic"]
    assert len(score.keymap) == 1


def test_starter_explains_every_key() -> None:
    for key in ("target", "theme", "name", "kind", "command", "preset", "model", "api_base",
                "api_key_env", "role", "timeout", "id", "intent", "allow", "deny", "verify",
                "agents", "junit", "disposable"):
        assert re.search(rf"^#.*\b{key}\b", STARTER_TOML, flags=re.MULTILINE), key


# --- verify checks ---------------------------------------------------------------------------


def test_verify_names_are_derived_and_made_unique_by_a_word_of_their_own() -> None:
    text = """\
[[specs]]
id = "s"
intent = "x"
verify = [
  "pytest -q",
  "pytest tests/e2e",
  "./scripts/lint.sh --strict",
  { name = "pytest", command = "python -m pytest" },
  "pytest -x",
]
"""
    checks = parse_score(text, Path("orchestra.toml")).specs[0].verify
    assert [c.name for c in checks] == ["pytest-2", "pytest-e2e", "lint.sh", "pytest", "pytest-3"]
    assert [c.command for c in checks][3] == "python -m pytest"
    assert all(c.timeout == 600.0 and c.junit is None for c in checks)


def test_duplicate_explicit_check_names_are_an_error() -> None:
    err = error_for('[[specs]]\nid = "s"\nintent = "x"\nverify = [\n'
                    '  { name = "t", command = "a" },\n  { name = "t", command = "b" },\n]\n')
    assert str(err) == ("orchestra.toml:6: specs[0].verify[1].name: "
                        "duplicate check name 't' (first at verify[0])")


# --- content hash ----------------------------------------------------------------------------


def test_content_hash_is_stable_and_canonical(tmp_path: Path) -> None:
    spec = load_score(write(tmp_path, FULL)).spec("fix-bug")
    again = parse_score(FULL, Path("elsewhere.toml")).spec("fix-bug")
    assert spec.content_hash() == again.content_hash()
    canonical = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    assert spec.content_hash() == hashlib.sha256(canonical.encode()).hexdigest()
    assert json.loads(canonical)["verify"][1] == {
        "name": "lint", "command": "ruff check .", "junit": "report.xml", "timeout": 120.0}


def test_content_hash_changes_with_the_spec(tmp_path: Path) -> None:
    spec = load_score(write(tmp_path, FULL)).spec("fix-bug")
    changed = load_score(write(tmp_path, FULL.replace("the failing test", "all tests"))).spec(
        "fix-bug")
    assert changed.content_hash() != spec.content_hash()
    assert dataclasses.replace(spec, deny=()).content_hash() != spec.content_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", spec.content_hash())


# --- errors: one problem each ----------------------------------------------------------------

AGENT = '[[agents]]\nname = "a"\nkind = "shell"\ncommand = "true"\n'

ERRORS = [
    pytest.param(
        AGENT + '\n[[agents]]\nname = "b"\nkind = "shell"\ncomand = "x"\n',
        "orchestra.toml:9: agents[1].comand: unknown key 'comand' (did you mean 'command'?)",
        id="unknown-key"),
    pytest.param(
        '[orchestra]\ntargte = "main"\n',
        "orchestra.toml:2: orchestra.targte: unknown key 'targte' (did you mean 'target'?)",
        id="unknown-key-in-table"),
    pytest.param(
        '[ui]\ntheme = "x"\n\n[keymapp]\n"a" = "b"\n',
        "orchestra.toml:4: keymapp: unknown table 'keymapp' (did you mean 'keymap'?)",
        id="unknown-table"),
    pytest.param(
        'version = 2\n',
        "orchestra.toml:1: version: unknown key 'version'", id="unknown-top-level-key"),
    pytest.param(
        AGENT + 'timeout = "soon"\n',
        "orchestra.toml:5: agents[0].timeout: expected number, got string", id="wrong-type"),
    pytest.param(
        AGENT + 'timeout = true\n',
        "orchestra.toml:5: agents[0].timeout: expected number, got boolean",
        id="bool-is-not-a-number"),
    pytest.param(
        '[keymap]\n"run.accept" = 1\n',
        'orchestra.toml:2: keymap."run.accept": expected string, got integer',
        id="keymap-value-type"),
    pytest.param(
        '[agents]\nname = "a"\n',
        "orchestra.toml:1: agents: expected array of tables ([[agents]]), got table",
        id="table-instead-of-array"),
    pytest.param(
        AGENT + '\n[[agents]]\nname = "b"\ncommand = "x"\n',
        "orchestra.toml:6: agents[1].kind: missing required key 'kind'",
        id="missing-key-points-at-header"),
    pytest.param(
        AGENT + '\n[[agents]]\nkind = "shell"\nname = "a"\ncommand = "x"\n',
        "orchestra.toml:8: agents[1].name: duplicate agent name 'a' (first defined at agents[0])",
        id="duplicate-agent"),
    pytest.param(
        '[[specs]]\nid = "s"\nintent = "x"\n\n[[specs]]\nid = "s"\nintent = "y"\n',
        "orchestra.toml:6: specs[1].id: duplicate spec id 's' (first defined at specs[0])",
        id="duplicate-spec"),
    pytest.param(
        AGENT.replace('"a"', '"fixer"') + '[[specs]]\nid = "s"\nintent = "x"\n'
        'agents = [\n  "fixer",\n  "fixr",\n]\n',
        "orchestra.toml:10: specs[0].agents[1]: unknown agent 'fixr' (did you mean 'fixer'?)",
        id="unknown-agent"),
    pytest.param(
        '[[agents]]\nname = "a"\nkind = "shel"\ncommand = "x"\n',
        "orchestra.toml:3: agents[0].kind: invalid kind 'shel': expected one of shell, cli, llm "
        "(did you mean 'shell'?)", id="invalid-kind"),
    pytest.param(
        '[[agents]]\nname = "a"\nkind = "cli"\npreset = "gemeni"\n',
        "orchestra.toml:4: agents[0].preset: invalid preset 'gemeni': expected one of claude, "
        "codex, aider, gemini, opencode (did you mean 'gemini'?)", id="invalid-preset"),
    pytest.param(
        AGENT + 'model = "openai/gpt-4o"\n',
        "orchestra.toml:5: agents[0].model: 'model' is not allowed for a shell agent "
        "(only cli and llm agents)", id="model-on-shell"),
    pytest.param(
        '[[agents]]\nname = "a"\nkind = "llm"\nmodel = "m"\ncommand = "x"\n',
        "orchestra.toml:5: agents[0].command: 'command' is not allowed for an llm agent "
        "(only shell and cli agents)", id="command-on-llm"),
    pytest.param(
        '\n[[agents]]\nname = "a"\nkind = "llm"\n',
        "orchestra.toml:2: agents[0].model: missing required key 'model' (e.g. \"openai/gpt-4o\")",
        id="llm-needs-model"),
    pytest.param(
        '[[agents]]\nname = "a"\nkind = "shell"\n',
        "orchestra.toml:1: agents[0].command: missing required key 'command' "
        "(a shell agent runs it)", id="shell-needs-command"),
    pytest.param(
        '# comment\n[[agents]]\nname = "a"\nkind = "cli"\n',
        "orchestra.toml:2: agents[0]: a cli agent needs 'preset' "
        "(claude, codex, aider, gemini, opencode) or 'command'", id="cli-needs-preset-or-command"),
    pytest.param(
        '[[agents]]\nname = "a"\nkind = "cli"\npreset = "codex"\napi_key_env = "sk-123"\n',
        "orchestra.toml:5: agents[0].api_key_env: must name an environment variable "
        "(e.g. OPENAI_API_KEY), not hold the key itself", id="api-key-env"),
    pytest.param(
        AGENT.replace('"a"', '"My Agent"'),
        "orchestra.toml:2: agents[0].name: invalid agent name 'My Agent': use lower-case letters, "
        "digits, '-' and '_', starting with a letter or digit", id="invalid-name"),
    pytest.param(
        AGENT + 'timeout = 0\n',
        "orchestra.toml:5: agents[0].timeout: must be a positive number of seconds, got 0",
        id="timeout-not-positive"),
    pytest.param(
        '[[specs]]\nid = "s"\nintent = "  "\n',
        "orchestra.toml:3: specs[0].intent: must not be empty", id="empty-intent"),
    pytest.param(
        '[[specs]]\nid = "s"\nintent = "x"\nallow = [\n  "src/**",\n  7,\n]\n',
        "orchestra.toml:6: specs[0].allow[1]: expected string, got integer",
        id="glob-not-a-string"),
    pytest.param(
        '[[specs]]\nid = "s"\nintent = "x"\nverify = [\n  "pytest",\n'
        '  { name = "lint", comand = "ruff" },\n]\n',
        "orchestra.toml:6: specs[0].verify[1].comand: unknown key 'comand' "
        "(did you mean 'command'?)", id="verify-inline-table-key"),
    pytest.param(
        '[[specs]]\nid = "s"\nintent = "x"\nverify = ["a", "b", { name = "c" }]\n',
        "orchestra.toml:4: specs[0].verify[2].command: missing required key 'command'",
        id="verify-missing-command"),
    pytest.param(
        '[[specs]]\nid = "s"\nintent = "x"\nverify = [\n  "a",\n  " ",\n]\n',
        "orchestra.toml:6: specs[0].verify[1]: command must not be empty",
        id="verify-empty-command"),
    pytest.param(
        '[[specs]]\nid = "s"\nintent = "x"\nverify = [\n  "a",\n  3,\n]\n',
        "orchestra.toml:6: specs[0].verify[1]: expected command string or table, got integer",
        id="verify-item-type"),
    pytest.param(
        '[orchestra]\ntarget = "main"\n\n[[agents]]\nname = "a"\nkind = \n',
        "orchestra.toml:6: TOML syntax error: Invalid value (column 8)", id="syntax-error"),
    pytest.param(
        '[[specs]]\nid = "s"\nintent = "x"\n[[specs]]\nid = "t"\nintent = "unterminated\n',
        "orchestra.toml:6: TOML syntax error: Illegal character '\\n' (column 23)",
        id="syntax-error-unterminated"),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_each_problem_is_reported_with_line_key_and_suggestion(text: str, expected: str) -> None:
    err = error_for(text)
    assert str(err) == expected
    assert len(err.problems) == 1


def test_error_attributes_describe_the_problem() -> None:
    err = error_for(AGENT + '\n[[agents]]\nname = "b"\nkind = "shell"\ncomand = "x"\n')
    assert (err.path, err.line, err.key) == (Path("orchestra.toml"), 9, "agents[1].comand")
    assert err.message == "unknown key 'comand'"
    assert err.suggestion == "command"
    assert err.problems[0].format(err.path) == str(err).splitlines()[0]


def test_several_problems_are_all_reported_in_line_order(tmp_path: Path) -> None:
    text = """\
[[agents]]
name = "fixer"
kind = "shell"
command = "x"
timout = 10

[[specs]]
id = "s"
intent = "x"
agents = ["fixr"]

[orchestra]
target = 3
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_score(path)
    err = caught.value
    assert str(err).splitlines() == [
        f"{path}:5: agents[0].timout: unknown key 'timout' (did you mean 'timeout'?)",
        f"{path}:10: specs[0].agents[0]: unknown agent 'fixr' (did you mean 'fixer'?)",
        f"{path}:13: orchestra.target: expected string, got integer",
    ]
    assert [p.line for p in err.problems] == [5, 10, 13]
    assert [p.suggestion for p in err.problems] == ["timeout", "fixer", None]
    assert (err.line, err.key) == (5, "agents[0].timout")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_score(tmp_path / "orchestra.toml")
    err = caught.value
    assert err.line is None and err.key is None
    assert str(err).startswith(f"{tmp_path / 'orchestra.toml'}: file not found")


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_score(tmp_path)


def test_path_is_shown_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, '[ui]\ntheme = 1\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_score(Path("orchestra.toml"))
    assert str(caught.value) == "orchestra.toml:2: ui.theme: expected string, got integer"


def test_config_error_from_one_message() -> None:
    err = ConfigError(Path("x.toml"), "broken", line=3, key="ui", suggestion="uu")
    assert str(err) == "x.toml:3: ui: broken (did you mean 'uu'?)"
    assert len(err.problems) == 1 and err.message == "broken"


# --- line finding ----------------------------------------------------------------------------


def test_line_index_ignores_look_alikes_in_strings_and_arrays() -> None:
    text = '''\
[[specs]]
id = "s"
intent = """
[[agents]]
name = "not-an-agent"
"""
allow = [
  ["nested"],
  'x = 1',
]
[[agents]]
"name" = 'a'
kind.sub = 1
[[agents]]
name = "b"  # comment with [[agents]]
'''
    index = LineIndex(text)
    assert index.find(("agents", 0)) == 11
    assert index.find(("agents", 0, "name")) == 12
    assert index.find(("agents", 0, "kind", "sub")) == 13
    assert index.find(("agents", 1, "name")) == 15
    assert index.find(("agents", 2)) == 11  # unknown: falls back to the array's first header
    assert index.find(("orchestra", "target")) is None
    assert index.find(("specs", 0, "allow", 1)) == 9
    assert index.find(("specs", 0, "intent")) == 3
    assert index.find(("specs", 0, "missing")) == 1


def test_line_index_handles_sub_tables_of_arrays() -> None:
    text = '[[specs]]\nid = "a"\n[[specs]]\nid = "b"\n[specs.extra]\nx = 1\n'
    index = LineIndex(text)
    assert index.find(("specs", 1, "extra", "x")) == 6
    err = error_for(text.replace('id = "a"', 'id = "a"\nintent = "i"').replace(
        'id = "b"', 'id = "b"\nintent = "j"'))
    assert str(err) == ("orchestra.toml:7: specs[1].extra: unknown key 'extra'")


def test_llm_budgets_are_read_and_checked() -> None:
    score = parse_score('[[agents]]\nname = "m"\nkind = "llm"\nmodel = "openai/x"\nmax_turns = 8\n'
                        'max_tokens = 20000\nmax_cost = 1\nrequest_timeout = 30\n', Path("orchestra.toml"))
    agent = score.agent("m")
    assert (agent.max_turns, agent.max_tokens, agent.max_cost, agent.request_timeout) == (8, 20000, 1.0, 30.0)
    defaults = parse_score('[[agents]]\nname = "m"\nkind = "llm"\nmodel = "openai/x"\n', Path("o.toml")).agent("m")
    assert (defaults.max_turns, defaults.max_tokens, defaults.max_cost) == (50, None, None)
    err = error_for('[[agents]]\nname = "m"\nkind = "llm"\nmodel = "openai/x"\nmax_turns = 2.5\n')
    assert "agents[0].max_turns: must be a positive whole number, got 2.5" in str(err)
    err = error_for('[[agents]]\nname = "s"\nkind = "shell"\ncommand = "true"\nmax_cost = 3\n')
    assert "'max_cost' is not allowed for a shell agent (only llm agents)" in str(err)


def test_a_cli_agent_may_name_its_model() -> None:
    score = parse_score('[[agents]]\nname = "c"\nkind = "cli"\npreset = "aider"\nmodel = "openai/x"\n', Path("o.toml"))
    assert score.agent("c").model == "openai/x"
