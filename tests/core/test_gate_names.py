"""A verify command given as a bare string gets the name a reader would give it: the tool it runs, past
assignments and wrappers; two commands of the same tool get distinct names; an explicit name wins."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from orchestra.core.base.names import is_check_name
from orchestra.core.score import parse_score
from orchestra.core.score.names import check_name_problem, derived_check_name, program_of

SPEC = '[[specs]]\nid = "s"\nintent = "x"\n'


@pytest.mark.parametrize(("command", "name"), [
    ("PYTHONPATH=src python -m pytest -q", "pytest"),
    ("PYTHONPATH=src DJANGO_DEBUG=1 python3 -m pytest", "pytest"),
    ("env PYTHONPATH=src pytest -x", "pytest"),
    ("/usr/bin/env -u HOME make check", "make-check"),
    ("uv run pytest", "pytest"),
    ("uv run --with pytest-cov python -X dev -m pytest --cov", "pytest"),
    ("uvx ruff check .", "ruff"),
    ("poetry run mypy src", "mypy"),
    ("pdm run python -m mypy", "mypy"),
    ("npx eslint .", "eslint"),
    ("npx -p typescript tsc --noEmit", "tsc"),
    ("timeout 600 pytest", "pytest"),
    ("timeout -k 5 -s KILL 10m npm test", "npm-test"),
    ("nice -n 10 cargo test --all", "cargo-test"),
    ("npm test", "npm-test"),
    ("npm run test:unit", "npm-test-unit"),
    ("pnpm exec vitest run", "vitest"),
    ("ruff check .", "ruff"),
    ("ruff format --check", "ruff-format"),
    ("go test ./...", "go-test"),
    ("cd src && pytest -q", "pytest"),
    ("export CI=1; pytest", "pytest"),
    ("sh -c 'cd app && make lint'", "make-lint"),
    ("bash scripts/check.sh --all", "check.sh"),
    ("pytest -q 2>&1 | tee pytest.out", "pytest"),
    ("python -m coverage run -m pytest", "pytest"),
    ("coverage run -m pytest tests", "pytest"),
    ("python tools/check_docs.py --strict", "check_docs"),
    ("python -c 'import app'", "python"),
])
def test_a_bare_command_is_named_after_the_tool_it_runs(command: str, name: str) -> None:
    derived = parse_score(SPEC + f"verify = [{json.dumps(command)}]\n", Path("o.toml")).specs[0].verify[0].name
    assert derived == name
    assert check_name_problem(derived) is None and is_check_name(derived)


def test_the_issue_s_command_is_pytest_not_its_assignment() -> None:
    text = SPEC + 'verify = ["PYTHONPATH=src python -m pytest -q"]\n'
    assert parse_score(text, Path("o.toml")).specs[0].verify[0].name == "pytest"


def test_two_commands_of_one_tool_get_a_distinguishing_word() -> None:
    text = SPEC + """verify = [
  "pytest tests/unit -q",
  "PYTHONPATH=src pytest tests/integration/",
  "python -m pytest tests/test_api.py",
  "pytest -m slow",
  "pytest -q",
  "pytest --lf",
]
"""
    names = [c.name for c in parse_score(text, Path("o.toml")).specs[0].verify]
    assert names == ["pytest", "pytest-integration", "pytest-test_api", "pytest-slow", "pytest-2", "pytest-3"]


def test_an_explicit_name_wins_and_a_derived_one_steps_aside() -> None:
    text = SPEC + """verify = [
  "PYTHONPATH=src python -m pytest -q",
  { name = "pytest", command = "make test" },
  { name = "lint", command = "ruff check ." },
]
"""
    names = [c.name for c in parse_score(text, Path("o.toml")).specs[0].verify]
    assert names == ["pytest-2", "pytest", "lint"]


def test_derived_names_are_the_same_on_every_load() -> None:
    text = SPEC + 'verify = ["uv run pytest tests/a", "uv run pytest tests/b", "npm test"]\n'
    first = [c.name for c in parse_score(text, Path("o.toml")).specs[0].verify]
    again = [c.name for c in parse_score(text, Path("o.toml")).specs[0].verify]
    assert first == again == ["pytest", "pytest-b", "npm-test"]


def test_odd_commands_still_get_valid_names() -> None:
    taken: dict[str, int] = {}
    odd = ("env", "PYTHONPATH=src", "timeout 5", "timeout -s", "env -u", "npx", "uv run", "uv run --with", "&& ;",
           "sh -c", "bash -c ''", "'%%%' x", "-x", "python -m", "python -W", "python -m coverage run", "npm run",
           "cd src &&", "2>&1", "> out.txt", "| tee", "coverage run -m", "python -c", "--", "npx --")
    for command in odd:
        name = derived_check_name(command, taken)
        assert is_check_name(name) and check_name_problem(name) is None, (command, name)
        assert name not in taken
        taken[name] = 0


def test_program_of_reads_past_wrappers() -> None:
    assert program_of("FOO=1 timeout 60 uv run python -m mypy src") == "mypy"


def test_no_command_line_breaks_naming() -> None:
    words = ["python", "-m", "-c", "-W", "pytest", "uv", "run", "env", "-u", "timeout", "-s", "5", "npx", "--", "&&",
             ";", "|", "2>&1", ">", "x", "npm", "sh", "bash", "'a b'", "FOO=1", "coverage", "ruff", "check", "cd",
             "..", "/", "'", "make", "\\"]
    generator = random.Random(11)
    for _ in range(3000):
        command = " ".join(generator.choice(words) for _ in range(generator.randint(0, 6)))
        name = derived_check_name(command, {"pytest": 0})
        assert check_name_problem(name) is None and name != "pytest", (command, name)
