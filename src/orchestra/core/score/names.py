"""Names in the score: how long they may be, which verify check names are valid, and derived names.

A check's name becomes a file name (`<run dir>/gates/<name>.log`), so it is a plain file name:
letters, digits, '.', '-' and '_', starting with a letter or digit.
"""

from __future__ import annotations

import re
import shlex

from orchestra.core.base.names import CHECK_NAME, MAX_NAME

RESERVED_CHECK_NAMES = ("boundary",)  # the boundary gate shares the run's table of gates

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"python[0-9.]*")
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


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


def program_of(command: str) -> str:
    """The program a command line runs: past `VAR=value` words, its base name; X for `python -m X`."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: the shell will say so when it runs
        words = command.split()
    while words and _ASSIGNMENT.match(words[0]):
        words.pop(0)
    program = words[0].rstrip("/").rsplit("/", 1)[-1] if words else ""
    if _PYTHON.fullmatch(program) and len(words) > 2 and words[1] == "-m":
        return words[2]
    return program


def derived_check_name(command: str, taken: set[str] | dict[str, int]) -> str:
    """A valid check name for command, not in taken (nor reserved), made unique with -2, -3, ..."""
    base = _NOT_NAME.sub("-", program_of(command)).lstrip("._-")[:MAX_NAME].rstrip("-") or "check"
    name, n = base, 2
    while name in taken or name in RESERVED_CHECK_NAMES:
        suffix = f"-{n}"
        name, n = base[: MAX_NAME - len(suffix)] + suffix, n + 1
    return name
