"""Names in the score: how long they may be, which verify check names are valid, and derived names.

A check's name becomes a file name (`<run dir>/gates/<name>.log`), so it is a plain file name:
letters, digits, '.', '-' and '_', starting with a letter or digit.

A verify command given as a bare string is named after the tool it runs, as a reader would name it:
`PYTHONPATH=src uv run python -m pytest -q` is "pytest", `npm run test:unit` is "npm-test-unit". The name
keys the check's results, so it depends on nothing but the command and the names taken before it.
"""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

from orchestra.core.base.names import CHECK_NAME, MAX_NAME

RESERVED_CHECK_NAMES = ("boundary",)  # the boundary gate shares the run's table of gates

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"python[0-9.]*")
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;"}
_REDIRECTION = re.compile(r"[0-9]*(?:>>?|<|>&|&>)")
# Commands that only set up for the one that matters (`cd src && pytest`).
_SET_UP = {"cd", "pushd", "export", "source", ".", "set", "true", ":"}
# Wrappers that run the command after them: how many words they take first, and which of their options
# take a value in the next word.
_WRAPPERS: dict[tuple[str, ...], tuple[int, frozenset[str]]] = {
    ("env",): (0, frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"})),
    ("timeout",): (1, frozenset({"-s", "--signal", "-k", "--kill-after"})),
    ("nice",): (0, frozenset({"-n", "--adjustment"})),
    ("time",): (0, frozenset()), ("nohup",): (0, frozenset()), ("exec",): (0, frozenset()),
    ("command",): (0, frozenset()), ("stdbuf",): (0, frozenset()), ("xvfb-run",): (0, frozenset({"-n", "-s"})),
    ("uv", "run"): (0, frozenset({"--with", "--python", "-p", "--group", "--extra", "--package", "--project",
                                  "--directory", "--env-file", "--index", "--with-requirements", "--only-group"})),
    ("uvx",): (0, frozenset({"--with", "--python", "-p", "--from"})),
    ("poetry", "run"): (0, frozenset({"-C", "--directory", "-P", "--project"})),
    ("pdm", "run"): (0, frozenset({"-p", "--project"})), ("hatch", "run"): (0, frozenset()),
    ("pipenv", "run"): (0, frozenset()), ("rye", "run"): (0, frozenset()), ("pipx", "run"): (0, frozenset()),
    ("conda", "run"): (0, frozenset({"-n", "--name", "-p", "--prefix"})),
    ("npx",): (0, frozenset({"-p", "--package"})), ("bunx",): (0, frozenset()),
    ("pnpm", "exec"): (0, frozenset()), ("pnpm", "dlx"): (0, frozenset()), ("npm", "exec"): (0, frozenset()),
    ("yarn", "exec"): (0, frozenset()), ("yarn", "dlx"): (0, frozenset()),
    ("coverage", "run"): (0, frozenset({"--rcfile", "--source", "--include", "--omit", "--data-file"})),
}
# Tools named together with their subcommand ("npm-test", "cargo-clippy"); a default subcommand is left out.
_SUBCOMMAND_TOOLS = {"npm", "yarn", "pnpm", "bun", "cargo", "go", "make", "just", "deno", "dotnet", "mvn",
                     "gradle", "gradlew", "mix", "rake", "task", "ruff", "nox", "tox"}
_DEFAULT_SUBCOMMAND = {"ruff": "check"}
_SCRIPT_RUNNERS = {"run", "run-script"}
_SHELLS = {"sh", "bash", "zsh", "dash"}  # `npm run lint` is "npm-lint"


class Invocation(NamedTuple):
    """What a command line runs: the tool's name ("pytest", "npm-test") and the words after it."""

    name: str
    args: tuple[str, ...]


def too_long(what: str, value: str) -> str | None:
    """The message for a name longer than MAX_NAME, or None."""
    if len(value) <= MAX_NAME:
        return None
    return f"{what} is {len(value)} characters long; at most {MAX_NAME} are allowed"


def check_name_problem(name: str) -> str | None:
    """Why name cannot name a verify check, or None when it can."""
    if name in RESERVED_CHECK_NAMES:
        return f"check name {name!r} is reserved for the {name} gate"
    if not CHECK_NAME.fullmatch(name):
        return (f"invalid check name {name!r}: use letters, digits, '.', '-' and '_', starting with a "
                "letter or digit (it names the gate's log file)")
    return too_long("check name", name)


def _words(command: str) -> list[str]:
    """The shell words of command, with `&&`, `;`, `|` and redirections as words of their own."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError:  # unbalanced quotes: the shell will say so when it runs
        return command.split()


def _segments(words: list[str]) -> list[list[str]]:
    """The simple commands of a command line, without redirections and their targets."""
    segments: list[list[str]] = [[]]
    skip = False
    for word in words:
        if word in _SEPARATORS:
            segments.append([])
        elif skip:
            skip = False
        elif _REDIRECTION.fullmatch(word):
            skip = True
            if segments[-1] and segments[-1][-1].isdigit():  # the 2 of `2>&1`
                segments[-1].pop()
        else:
            segments[-1].append(word)
    return [segment for segment in segments if segment]


def _base(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1]


def _unwrap(words: list[str]) -> list[str]:
    """words past `VAR=value` assignments and wrappers (`env`, `uv run`, `timeout 60`, `npx`, ...)."""
    while words:
        if _ASSIGNMENT.match(words[0]):
            words = words[1:]
            continue
        key = next((key for key in _WRAPPERS if [_base(words[0]), *words[1:len(key)]] == list(key)), None)
        if key is None:
            return words
        positional, valued = _WRAPPERS[key]
        words = _past_options(words[len(key):], valued)[positional:]
    return words


def _past_options(words: list[str], valued: frozenset[str]) -> list[str]:
    """words past leading options (and the values of those in valued), and past a `--`."""
    i = 0
    while i < len(words) and words[i].startswith("-") and len(words[i]) > 1:
        if words[i] == "--":
            return words[i + 1:]
        i += 1 if "=" in words[i] or words[i] not in valued else 2
    return words[i:]


def invocation_of(command: str) -> Invocation:
    """The tool a command line runs and the words after it: past assignments, wrappers and set-up
    commands; X for `python -m X`, a script's stem for `python X.py`, inside `sh -c '...'`."""
    segments = [_unwrap(segment) for segment in _segments(_words(command))]
    segments = [segment for segment in segments if segment] or [[]]
    words = next((s for s in segments if _base(s[0]) not in _SET_UP), segments[0]) if segments[0] else []
    if not words:
        return Invocation("", ())
    program, args = _base(words[0]), words[1:]
    if program in _SHELLS and len(args) >= 2 and args[0] == "-c":
        return invocation_of(args[1])
    if program in _SHELLS and args and not args[0].startswith("-"):  # `bash scripts/check.sh` is check.sh
        return Invocation(_base(args[0]), tuple(args[1:]))
    if _PYTHON.fullmatch(program):
        return _python(program, args)
    if program in _SUBCOMMAND_TOOLS and args and not args[0].startswith("-"):
        return _subcommand(program, args)
    return Invocation(program, tuple(args))


def _python(program: str, args: list[str]) -> Invocation:
    """`python -m X ...` is X; `python tool.py ...` is tool; python alone (or with -c) is python."""
    rest = _past_options(args, frozenset({"-W", "-X", "-m", "-c"}))
    given = args[: len(args) - len(rest)]  # the interpreter's own options, -m X or -c CODE among them
    at = given.index("-m") if "-m" in given else len(given)
    if at + 1 < len(given):
        module_args = [*given[at + 2:], *rest]
        if given[at + 1] == "coverage" and module_args[:1] == ["run"]:
            return invocation_of(shlex.join(["coverage", *module_args]))
        return Invocation(given[at + 1], tuple(module_args))
    if rest and "-c" not in given:
        return Invocation(_base(rest[0]).removesuffix(".py"), tuple(rest[1:]))
    return Invocation(program, tuple(args))


def _subcommand(program: str, args: list[str]) -> Invocation:
    """npm-test, npm-lint (for `npm run lint`), cargo-clippy, make-check; ruff for `ruff check`."""
    sub, rest = args[0], args[1:]
    if program in ("npm", "yarn", "pnpm", "bun") and sub in _SCRIPT_RUNNERS and rest:
        sub, rest = rest[0], rest[1:]
    if _DEFAULT_SUBCOMMAND.get(program) == sub:
        return Invocation(program, tuple(rest))
    return Invocation(f"{program}-{sub}", tuple(rest))


def program_of(command: str) -> str:
    """The name of the tool a command line runs (see invocation_of)."""
    return invocation_of(command).name


def _as_name(text: str, room: int = MAX_NAME) -> str:
    return _NOT_NAME.sub("-", text).lstrip("._-")[:room].rstrip("-._")


def _distinguishing_word(args: tuple[str, ...]) -> str:
    """The first argument that is not an option, as a short name part: "unit" for `tests/unit/`,
    "test_api" for `tests/test_api.py`, "slow" for `-m slow`."""
    for arg in args:
        if arg.startswith("-"):
            continue
        word = _as_name(_base(arg).removesuffix(".py"), 24)
        if word:
            return word
    return ""


def derived_check_name(command: str, taken: set[str] | dict[str, int]) -> str:
    """A valid check name for command, not in taken (nor reserved): the tool's name, or when that is taken
    the tool's name and a word of its arguments ("pytest-integration"), else made unique with -2, -3, ..."""
    invocation = invocation_of(command)
    base = _as_name(invocation.name) or "check"
    if base not in taken and base not in RESERVED_CHECK_NAMES:
        return base
    word = _distinguishing_word(invocation.args)
    if word:
        named = f"{base[: MAX_NAME - len(word) - 1]}-{word}"
        if named not in taken and named not in RESERVED_CHECK_NAMES and word not in base.split("-"):
            return named
    name, n = base, 2
    while name in taken or name in RESERVED_CHECK_NAMES:
        suffix = f"-{n}"
        name, n = base[: MAX_NAME - len(suffix)] + suffix, n + 1
    return name
