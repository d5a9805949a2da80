"""Problems in orchestra.toml and where they are: type checks, line finding, ConfigError.

tomllib reports no positions for valid documents, so `LineIndex` re-scans the raw text with a
small tolerant lexer and records the line of every table header, key and array item, keyed by
the same path tuples the validator uses, e.g. ("agents", 1, "command") or ("specs", 0, "verify", 2).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import OrchestraError

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}\n#]+")
_TOML_POS = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")
# Arrays and inline tables nested deeper than this are refused before tomllib, whose parser recurses.
MAX_NESTING = 32

# A value type: (name shown in messages, predicate on the parsed value).
ValueType = tuple[str, Callable[[Any], bool]]
STRING: ValueType = ("string", lambda v: isinstance(v, str))
NUMBER: ValueType = ("number", lambda v: isinstance(v, int | float) and not isinstance(v, bool))
STRINGS: ValueType = ("array of strings", lambda v: isinstance(v, list))  # items checked apart
ARRAY: ValueType = ("array", lambda v: isinstance(v, list))
BOOL: ValueType = ("boolean (true or false)", lambda v: isinstance(v, bool))


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a score file; `key` is dotted like `agents[1].comand`; `file` is the file it is in
    (orchestra.toml or one of specs/*.toml), None until a ConfigError fills it in."""

    line: int | None
    key: str | None
    message: str
    suggestion: str | None = None
    file: Path | None = None

    def format(self, path: Path | str) -> str:
        """Render as `file:line: key: message (did you mean 'x'?)`, leaving out unknown parts (path: no file)."""
        path = self.file if self.file is not None else path
        where = f"{path}:{self.line}" if self.line is not None else f"{path}"
        key = f"{self.key}: " if self.key else ""
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{where}: {key}{self.message}{hint}"


class ConfigError(OrchestraError):
    """Every problem found in the score's files; path/line/key/message/suggestion describe the first.

    Build it either from one message (`ConfigError(path, "no such file")`) or from a list of
    `ConfigProblem`s (`ConfigError(path, problems=[...])`); str() lists them one per line, each naming
    its own file (a problem without one is in path), so one error can report orchestra.toml and specs/*.toml.
    """

    def __init__(
        self,
        path: Path,
        message: str = "",
        *,
        line: int | None = None,
        key: str | None = None,
        suggestion: str | None = None,
        problems: Sequence[ConfigProblem] = (),
    ) -> None:
        found = tuple(problems) or (ConfigProblem(line, key, message, suggestion),)
        self.problems = tuple(p if p.file is not None else replace(p, file=path) for p in found)
        first = self.problems[0]
        self.path, self.line, self.key, self.message, self.suggestion = (
            first.file, first.line, first.key, first.message, first.suggestion)
        super().__init__("\n".join(problem.format(path) for problem in self.problems))

    exit_status = 2
    heading = "configuration error"


def format_key(path: KeyPath) -> str:
    """Spell a key path as `specs[0].verify[2].command`; keys that are not bare are quoted (and escaped)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out += f".{name}" if out else name
    return out


def type_name(value: Any) -> str:
    """The TOML name of a parsed value's type."""
    names = {bool: "boolean", str: "string", int: "integer", float: "float", list: "array",
             dict: "table"}
    return names.get(type(value), "date/time")


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option nearest to word by difflib's ratio, or None when nothing is close."""
    found = difflib.get_close_matches(word, sorted(options), n=1)
    return found[0] if found else None


def syntax_error(path: Path, text: str, error: tomllib.TOMLDecodeError) -> ConfigError:
    """Turn tomllib's message (position in a trailing parenthesis) into a located ConfigError."""
    raw = str(error)
    match = _TOML_POS.search(raw)
    if not match:
        return ConfigError(path, f"TOML syntax error: {raw}")
    reason = raw[: match.start()]
    if match.group(1):
        line, where = int(match.group(1)), f" (column {match.group(2)})"
    else:
        line, where = max(1, len(text.splitlines())), " (at end of file)"
    return ConfigError(path, f"TOML syntax error: {reason}{where}", line=line)


def nesting_error(path: Path, index: LineIndex | None) -> ConfigError:
    """The error for arrays or inline tables nested deeper than MAX_NESTING (where, when index saw it)."""
    message = f"arrays and inline tables are nested more than {MAX_NESTING} levels deep"
    if index is None or index.too_deep is None:
        return ConfigError(path, message)
    at, line = index.too_deep
    return ConfigError(path, message, line=line, key=format_key(at) or None)


class Problems:
    """Collects problems by key path during validation; lines are looked up only when raising."""

    def __init__(self, path: Path, text: str, index: LineIndex | None = None) -> None:
        self.path, self.text, self.index = path, text, index
        self.found: list[tuple[KeyPath, str, str | None]] = []
        self.guessed: set[KeyPath] = set()  # keys offered as "did you mean" for a misspelt key

    def add(self, at: KeyPath, message: str, suggestion: str | None = None) -> None:
        """Record a problem with the key at `at` (its line, or the nearest enclosing one)."""
        self.found.append((at, message, suggestion))

    def missing(self, at: KeyPath, message: str, *alternatives: KeyPath) -> None:
        """Report a missing key, unless a misspelling of it (or of an alternative) was reported."""
        if not {at, *alternatives} & self.guessed:
            self.add(at, message)

    def fields(self, raw: dict, at: KeyPath, fields: dict[str, ValueType],
               required: tuple[str, ...] = ()) -> dict[str, Any]:
        """The known, well-typed keys of raw; report unknown (with a guess), mistyped, missing."""
        good: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in fields:
                guess = closest(key, fields)
                self.add((*at, key), f"unknown key {key!r}", guess)
                if guess:
                    self.guessed.add((*at, guess))
            elif not fields[key][1](value):
                self.add((*at, key), f"expected {fields[key][0]}, got {type_name(value)}")
            elif fields[key] is not STRINGS or self._all_strings(value, (*at, key)):
                good[key] = value
        for key in required:
            if key not in raw:
                self.missing((*at, key), f"missing required key {key!r}")
        return good

    def _all_strings(self, items: list, at: KeyPath) -> bool:
        bad = [i for i, item in enumerate(items) if not isinstance(item, str)]
        for i in bad:
            self.add((*at, i), f"expected string, got {type_name(items[i])}")
        return not bad

    def collected(self) -> list[ConfigProblem]:
        """Every recorded problem, located in this file and sorted by line."""
        if not self.found:
            return []
        index = self.index or LineIndex(self.text)
        problems = [
            ConfigProblem(index.find(at), format_key(at) or None, message, suggestion, self.path)
            for at, message, suggestion in self.found
        ]
        return sorted(problems, key=lambda p: (p.line is None, p.line or 0))

    def raise_if_any(self) -> None:
        """Raise one ConfigError listing every recorded problem, sorted by line."""
        if self.found:
            raise ConfigError(self.path, problems=self.collected())


class _Stop(Exception):
    """The lexer met something it does not understand; skip to the next line."""


class LineIndex:
    """Line numbers (1-based) of headers, keys and array items in TOML text, by key path.

    `too_deep` is (key, line) of the first value whose arrays/inline tables nest beyond MAX_NESTING.
    """

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0
        self.newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.lines: dict[KeyPath, int] = {}
        self.counts: dict[KeyPath, int] = {}
        self.table: KeyPath = ()
        self.depth, self.outer_key = 0, ()  # outer_key: the key whose value is being read
        self.too_deep: tuple[KeyPath, int] | None = None
        self._scan()

    def find(self, path: KeyPath) -> int | None:
        """The line of path, else of its nearest recorded ancestor, else None."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def _line(self) -> int:
        return bisect_left(self.newlines, self.pos) + 1

    def _peek(self, size: int = 1) -> str:
        return self.text[self.pos : self.pos + size]

    def _note(self, path: KeyPath, line: int) -> None:
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def _scan(self) -> None:
        while True:
            try:
                self._skip_blank()
                if self.pos >= len(self.text):
                    return
                if self._peek() == "[":
                    self._header()
                else:
                    self._keyval(self.table)
            except _Stop:
                self.depth = 0
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end + 1

    def _skip_ws(self) -> None:
        while self._peek() in (" ", "\t"):
            self.pos += 1

    def _skip_blank(self) -> None:
        while self.pos < len(self.text):
            char = self._peek()
            if char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif char in " \t\r\n":
                self.pos += 1
            else:
                return

    def _header(self) -> None:
        line, double = self._line(), self._peek(2) == "[["
        self.pos += 2 if double else 1
        keys = self._key()
        self._skip_ws()
        close = "]]" if double else "]"
        if self._peek(len(close)) != close:
            raise _Stop
        self.pos += len(close)
        path = self._resolve(keys)
        if double:
            self.counts[path] = self.counts.get(path, -1) + 1
            path = (*path, self.counts[path])
        self._note(path, line)
        self.table = path

    def _resolve(self, keys: tuple[str, ...]) -> KeyPath:
        """Insert the current index after every prefix that names an array of tables."""
        path: KeyPath = ()
        for i, key in enumerate(keys):
            path = (*path, key)
            if i < len(keys) - 1 and path in self.counts:
                path = (*path, self.counts[path])
        return path

    def _keyval(self, base: KeyPath) -> None:
        line = self._line()
        path = (*base, *self._key())
        self._note(path, line)
        self._skip_ws()
        if self._peek() != "=":
            raise _Stop
        self.pos += 1
        self._skip_ws()
        if self.depth == 0:
            self.outer_key = path
        self._value(path)

    def _key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self._skip_ws()
            parts.append(self._key_part())
            self._skip_ws()
            if self._peek() != ".":
                return tuple(parts)
            self.pos += 1

    def _key_part(self) -> str:
        if self._peek() in ('"', "'"):
            start = self.pos
            self._string()
            try:
                return tomllib.loads(f"k = {self.text[start:self.pos]}")["k"]
            except tomllib.TOMLDecodeError:
                raise _Stop from None
        match = _BARE_KEY.match(self.text, self.pos)
        if not match:
            raise _Stop
        self.pos = match.end()
        return match.group()

    def _value(self, path: KeyPath) -> None:
        char = self._peek()
        if char in ('"', "'"):
            self._string()
        elif char == "[":
            self._array(path)
        elif char == "{":
            self._inline_table(path)
        else:
            match = _SCALAR.match(self.text, self.pos)
            if not match:
                raise _Stop
            self.pos = match.end()

    def _enter(self) -> None:
        """Step into an array or inline table; stop reading past MAX_NESTING levels."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            if self.too_deep is None:
                self.too_deep = (self.outer_key, self._line())
            raise _Stop

    def _array(self, path: KeyPath) -> None:
        self._enter()
        self.pos += 1
        index = 0
        while True:
            self._skip_blank()
            if self._peek() == "]":
                self.pos, self.depth = self.pos + 1, self.depth - 1
                return
            self._note((*path, index), self._line())
            self._value((*path, index))
            self._skip_blank()
            if self._peek() == ",":
                self.pos, index = self.pos + 1, index + 1
            elif self._peek() != "]":
                raise _Stop

    def _inline_table(self, path: KeyPath) -> None:
        self._enter()
        self.pos += 1
        while True:
            self._skip_blank()
            if self._peek() == "}":
                self.pos, self.depth = self.pos + 1, self.depth - 1
                return
            self._keyval(path)
            self._skip_blank()
            if self._peek() == ",":
                self.pos += 1
            elif self._peek() != "}":
                raise _Stop

    def _string(self) -> None:
        quote = self._peek()
        if self._peek(3) == quote * 3:
            end = self._find_close(quote * 3, self.pos + 3)
            for _ in range(2):  # up to two quotes may sit just before the closing delimiter
                if self.text.startswith(quote, end + 3):
                    end += 1
            self.pos = end + 3
        else:
            self.pos = self._find_close(quote, self.pos + 1) + 1

    def _find_close(self, delimiter: str, start: int) -> int:
        """Index of the closing delimiter; backslash escapes count only in basic strings."""
        i = start
        while i < len(self.text):
            if self.text.startswith(delimiter, i):
                return i
            if self.text[i] == "\\" and delimiter[0] == '"':
                i += 1
            elif self.text[i] == "\n" and len(delimiter) == 1:
                break
            i += 1
        raise _Stop
