"""The score refuses hostile or broken input with file:line:key: deep nesting, NUL characters, bad or
escaping globs, over-long names, check names that are not file names; and reads `disposable`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestra.core.base.globs import compile_globs, repository_glob_problem
from orchestra.core.score import DEFAULT_DISPOSABLE, STARTER_TOML, ConfigError, load_score, parse_score
from orchestra.core.score.names import CHECK_NAME, derived_check_name

SPEC = '[[specs]]\nid = "s"\nintent = "x"\n'


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_score(text, Path("orchestra.toml"))
    return caught.value


def messages(text: str) -> list[str]:
    return str(error_for(text)).splitlines()


# --- nesting ---------------------------------------------------------------------------------


def test_a_two_thousand_deep_array_is_a_config_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "orchestra.toml"
    path.write_text('[orchestra]\ntarget = "main"\n\n[[specs]]\nid = "s"\nintent = "x"\n'
                    f'allow = {"[" * 2000}{"]" * 2000}\n')
    with pytest.raises(ConfigError) as caught:
        load_score(path)
    assert str(caught.value) == (f"{path}:7: specs[0].allow: arrays and inline tables are nested "
                                 "more than 32 levels deep")


def test_nesting_is_counted_across_lines_and_inline_tables() -> None:
    deep = "{ a = " * 33 + "1" + " }" * 33
    assert messages(f'[ui]\ntheme = "x"\n\n[keymap]\nx = {deep}\n') == [
        "orchestra.toml:5: keymap.x: arrays and inline tables are nested more than 32 levels deep"]
    multi = "v = [\n" + "[\n" * 40 + "]\n" * 41
    err = error_for(multi)
    assert (err.line, err.key) == (33, "v")


def test_nesting_up_to_the_limit_is_only_checked_as_usual() -> None:
    text = SPEC + f'allow = {"[" * 32}"a"{"]" * 32}\n'
    assert messages(text) == ["orchestra.toml:4: specs[0].allow[0]: expected string, got array"]


def test_brackets_inside_strings_and_comments_do_not_count() -> None:
    text = SPEC + f'allow = ["{"[" * 50}", \'{"{" * 50}\'] # {"[" * 50}\n'
    assert parse_score(text, Path("o.toml")).specs[0].allow == ("[" * 50, "{" * 50)


# --- NUL characters --------------------------------------------------------------------------


def test_nul_characters_in_any_string_or_key_are_errors() -> None:
    text = ('[orchestra]\ntarget = "ma\\u0000in"\n\n[keymap]\n"run.acc\\u0000ept" = "y"\n\n'
            '[[agents]]\nname = "a"\nkind = "shell"\ncommand = """echo\\u0000"""\n\n'
            + SPEC + 'verify = [{ name = "t", command = "x\\u0000" }]\ndeny = ["\\u0000"]\n')
    assert messages(text) == [
        "orchestra.toml:2: orchestra.target: contains a NUL character (\\u0000)",
        'orchestra.toml:5: keymap."run.acc\\u0000ept": contains a NUL character (\\u0000)',
        "orchestra.toml:10: agents[0].command: contains a NUL character (\\u0000)",
        "orchestra.toml:15: specs[0].verify[0].command: contains a NUL character (\\u0000)",
        "orchestra.toml:16: specs[0].deny[0]: contains a NUL character (\\u0000)",
    ]


# --- globs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("glob", "message"), [
    ("[z-a]", "glob '[z-a]' is not valid (bad character range z-a)"),
    ("/etc/passwd", "glob '/etc/passwd' is an absolute path: globs are relative to the repository root"),
    ("!/etc", "glob '!/etc' is an absolute path: globs are relative to the repository root"),
    ("../secrets/**", "glob '../secrets/**' has a '..' component: globs cannot reach outside the repository"),
    ("src/../../x", "glob 'src/../../x' has a '..' component: globs cannot reach outside the repository"),
    ("", "glob '' is empty"),
])
@pytest.mark.parametrize("key", ["allow", "deny"])
def test_bad_globs_are_errors_at_their_item(key: str, glob: str, message: str) -> None:
    text = SPEC + f'{key} = [\n  "src/**",\n  "{glob}",\n]\n'
    assert messages(text) == [f"orchestra.toml:6: specs[0].{key}[1]: {message}"]


def test_dots_that_are_not_a_component_are_fine() -> None:
    spec = parse_score(SPEC + 'allow = ["..hidden", "a..b/**", "./src/**"]\n', Path("o.toml")).specs[0]
    assert spec.allow == ("..hidden", "a..b/**", "./src/**")


def test_a_bad_glob_cannot_be_compiled_either() -> None:
    assert repository_glob_problem("src/**") is None
    with pytest.raises(ValueError, match=r"'\[z-a\]' is not valid"):
        compile_globs(("ok", "[z-a]"))


# --- names -----------------------------------------------------------------------------------


def test_names_and_ids_longer_than_64_characters_are_errors() -> None:
    name, spec_id = "a" * 65, "s" * 80
    text = (f'[[agents]]\nname = "{name}"\nkind = "shell"\ncommand = "x"\n\n'
            f'[[specs]]\nid = "{spec_id}"\nintent = "x"\n')
    assert messages(text) == [
        "orchestra.toml:2: agents[0].name: agent name is 65 characters long; at most 64 are allowed",
        "orchestra.toml:7: specs[0].id: spec id is 80 characters long; at most 64 are allowed",
    ]
    ok = parse_score(text.replace(name, "a" * 64).replace(spec_id, "s" * 64), Path("o.toml"))
    assert len(ok.agents[0].name) == len(ok.specs[0].id) == 64


@pytest.mark.parametrize(("name", "message"), [
    ("../../../x", "invalid check name '../../../x': use letters, digits, '.', '-' and '_', starting with a "
                   "letter or digit (it names the gate's log file)"),
    ("a/b", "invalid check name 'a/b': use letters, digits, '.', '-' and '_', starting with a "
            "letter or digit (it names the gate's log file)"),
    (".hidden", "invalid check name '.hidden': use letters, digits, '.', '-' and '_', starting with a "
                "letter or digit (it names the gate's log file)"),
    ("x" * 65, "check name is 65 characters long; at most 64 are allowed"),
    ("boundary", "check name 'boundary' is reserved for the boundary gate"),
])
def test_explicit_check_names_must_be_plain_file_names(name: str, message: str) -> None:
    text = SPEC + f'verify = [\n  "true",\n  {{ name = "{name}", command = "true" }},\n]\n'
    assert messages(text) == [f"orchestra.toml:6: specs[0].verify[1].name: {message}"]


def test_valid_explicit_check_names_are_kept() -> None:
    text = SPEC + 'verify = [{ name = "Lint_1.v-2", command = "true" }]\n'
    assert parse_score(text, Path("o.toml")).specs[0].verify[0].name == "Lint_1.v-2"


def test_derived_check_names_skip_assignments_and_name_the_program() -> None:
    text = SPEC + """verify = [
  "FOO=1 BAR='a b' pytest -q",
  "python -m mypy src",
  "python3 -m pytest tests",
  "python3.11 -m pkg/tool",
  "/usr/bin/env make check",
  "../../../x --all",
  "'my tool!' run",
  "boundary check",
  "..",
  "echo 'unbalanced",
  "%s",
  "%s --again",
]
""" % ("z" * 80, "z" * 80)
    names = [c.name for c in parse_score(text, Path("o.toml")).specs[0].verify]
    assert names == ["pytest", "mypy", "pytest-tests", "pkg-tool", "make-check", "x", "my-tool", "boundary-check",
                     "check", "echo", "z" * 64, "z" * 62 + "-2"]
    assert all(CHECK_NAME.fullmatch(name) and len(name) <= 64 for name in names)


def test_derived_names_avoid_every_name_taken() -> None:
    assert derived_check_name("pytest -x", {"pytest": 0, "pytest-2": 1}) == "pytest-3"
    assert derived_check_name("", {}) == "check"


# --- disposable ------------------------------------------------------------------------------


def test_disposable_defaults_to_dependency_and_build_caches() -> None:
    score = parse_score("", Path("o.toml"))
    assert score.disposable == DEFAULT_DISPOSABLE
    for glob in ("node_modules/", ".venv/", "venv/", "__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/",
                 ".ruff_cache/", ".hypothesis/", ".tox/", ".nox/", ".gradle/", ".next/", ".cache/", "*.egg-info/",
                 ".coverage", ".DS_Store", ".aider*"):
        assert glob in DEFAULT_DISPOSABLE
    assert all(repository_glob_problem(glob) is None for glob in DEFAULT_DISPOSABLE)


def test_disposable_is_read_and_each_glob_checked() -> None:
    score = parse_score('[orchestra]\ndisposable = ["target/", "*.o"]\n', Path("o.toml"))
    assert score.disposable == ("target/", "*.o")
    assert parse_score('[orchestra]\ndisposable = []\n', Path("o.toml")).disposable == ()
    assert messages('[orchestra]\ndisposable = [\n  "build/",\n  "/tmp/**",\n  "[b-a]",\n  3,\n]\n') == [
        "orchestra.toml:6: orchestra.disposable[3]: expected string, got integer"]
    assert messages('[orchestra]\ndisposable = [\n  "build/",\n  "/tmp/**",\n  "[b-a]",\n]\n') == [
        "orchestra.toml:4: orchestra.disposable[1]: glob '/tmp/**' is an absolute path: globs are relative "
        "to the repository root",
        "orchestra.toml:5: orchestra.disposable[2]: glob '[b-a]' is not valid (bad character range b-a)",
    ]
    assert messages('[orchestra]\ndisposible = []\n') == [
        "orchestra.toml:2: orchestra.disposible: unknown key 'disposible' (did you mean 'disposable'?)"]


def test_the_starter_documents_disposable_and_its_example_loads(tmp_path: Path) -> None:
    assert re.search(r"^# disposable\b", STARTER_TOML, flags=re.MULTILINE)
    uncommented = re.sub(r"^#(?=disposable)", "", STARTER_TOML, flags=re.MULTILINE)
    path = tmp_path / "orchestra.toml"
    path.write_text(uncommented)
    assert "node_modules/" in load_score(path).disposable and load_score(path).disposable != DEFAULT_DISPOSABLE
