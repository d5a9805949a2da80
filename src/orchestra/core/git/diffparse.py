"""Parse `git diff --no-color` unified output into flat, display-ready lines.

The result is one flat tuple of lines (file headers, hunk headers, content and
meta lines) so that a viewer can index line `y` directly, plus one summary per
file pointing at its header line.  Pure Python, no UI imports.

Supported: modifications, additions, deletions, renames and copies (`-M`/`-C`),
mode changes, binary files, C-quoted paths, paths with spaces and the
"\\ No newline at end of file" marker.  Combined diffs (`diff --cc`, as shown
for merge commits) are skipped.  Prefixes may be the default `a/`/`b/` or any
other single-letter mnemonic prefix (`i/`, `w/`, `c/`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DiffLine", "FileDiff", "ParsedDiff", "parse_diff"]

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_DEV_NULL = "/dev/null"


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One displayable line of a diff.

    `kind` is "file", "hunk", "add", "del", "ctx" or "meta"; for add/del/ctx
    `text` lacks the +/-/space prefix.  `path` is the file the line belongs to.
    """

    kind: str
    text: str
    old_no: int | None
    new_no: int | None
    path: str


@dataclass(frozen=True, slots=True)
class FileDiff:
    """Summary of one changed file.

    `status` is "added", "deleted", "modified", "renamed" or "binary" (binary
    wins over the others); `old_path` is set only when it differs from `path`;
    `first_line` indexes this file's "file" line in `ParsedDiff.lines`.
    """

    path: str
    old_path: str | None
    status: str
    added: int
    removed: int
    first_line: int


@dataclass(frozen=True, slots=True)
class ParsedDiff:
    """All files and the flat list of lines of a diff."""

    files: tuple[FileDiff, ...]
    lines: tuple[DiffLine, ...]


def parse_diff(text: str) -> ParsedDiff:
    """Parse unified `git diff` output; anything before the first `diff --git` is ignored."""
    parser = _Parser()
    for raw in text.split("\n"):
        parser.feed(raw)
    return parser.finish()


def unquote_path(token: str) -> str:
    """Undo git's C-style quoting of a path (octal escapes are UTF-8 bytes)."""
    if len(token) < 2 or token[0] != '"' or token[-1] != '"':
        return token
    body, out, i = token[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out += char.encode()
            i += 1
        elif body[i + 1] in "01234567":
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(_ESCAPES.get(body[i + 1], ord(body[i + 1]) & 0xFF))
            i += 2
    return out.decode("utf-8", "replace")


def _split_quoted(text: str) -> tuple[str, str]:
    """Split a leading quoted token off `text`; return (token, rest)."""
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return text[: i + 1], text[i + 1 :].lstrip(" ")
        i += 1
    return text, ""


def _strip_prefix(path: str) -> str:
    """Drop a one-letter `x/` diff prefix such as `a/` or `b/`."""
    return path[2:] if len(path) > 2 and path[1] == "/" and path[0].isalpha() else path


def _header_paths(rest: str) -> tuple[str, str]:
    """Paths from the part of a `diff --git` line after the command.

    Unquoted names with spaces are ambiguous; the symmetric split is exact when
    both names are equal, and renames carry `rename from/to` lines anyway.
    """
    if rest.startswith('"'):
        first, second = _split_quoted(rest)
        return _strip_prefix(unquote_path(first)), _strip_prefix(unquote_path(second))
    if rest.endswith('"'):
        cut = rest.rfind(' "')
        return _strip_prefix(rest[:cut]), _strip_prefix(unquote_path(rest[cut + 1 :]))
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]:
        return _strip_prefix(rest[:half]), _strip_prefix(rest[half + 1 :])
    cut = rest.find(" b/")
    cut = cut if cut >= 0 else rest.find(" ")
    return _strip_prefix(rest[:cut]), _strip_prefix(rest[cut + 1 :])


def _marker_path(rest: str) -> str | None:
    """Path from a `---`/`+++` line remainder; None for /dev/null."""
    rest = rest.rstrip("\t")
    if rest == _DEV_NULL:
        return None
    return _strip_prefix(unquote_path(rest))


class _Parser:
    """Line-at-a-time state machine building a ParsedDiff."""

    def __init__(self) -> None:
        self.lines: list[DiffLine] = []
        self.files: list[FileDiff] = []
        self.in_file = False
        self.old_left = self.new_left = 0

    def feed(self, line: str) -> None:
        """Consume one line of diff output (without its newline)."""
        if self.old_left > 0 or self.new_left > 0:
            self._content(line)
        elif line.startswith("diff "):
            self._start_file(line)
        elif self.in_file:
            self._header_or_hunk(line)

    def finish(self) -> ParsedDiff:
        """Close the last file and freeze the result."""
        self._close_file()
        return ParsedDiff(files=tuple(self.files), lines=tuple(self.lines))

    def _content(self, line: str) -> None:
        """Handle one line inside a hunk body."""
        if line.endswith("\r"):
            line = line[:-1]
        tag, text = line[:1], line[1:]
        if tag == "+":
            self.lines.append(DiffLine("add", text, None, self.new_no, self.path))
            self.new_no += 1
            self.new_left -= 1
            self.added += 1
        elif tag == "-":
            self.lines.append(DiffLine("del", text, self.old_no, None, self.path))
            self.old_no += 1
            self.old_left -= 1
            self.removed += 1
        elif tag == "\\":
            self.lines.append(DiffLine("meta", line, None, None, self.path))
        else:  # " " or an empty line whose trailing space was stripped
            self.lines.append(DiffLine("ctx", text, self.old_no, self.new_no, self.path))
            self.old_no += 1
            self.new_no += 1
            self.old_left -= 1
            self.new_left -= 1

    def _start_file(self, line: str) -> None:
        """Begin a new file at a `diff --git` line."""
        self._close_file()
        self.in_file = line.startswith("diff --git ")
        if not self.in_file:
            return
        self.old_path, self.path = _header_paths(line[len("diff --git ") :])
        self.status = "modified"
        self.binary = False
        self.added = self.removed = 0
        self.header_index = len(self.lines)
        self.lines.append(DiffLine("file", "", None, None, ""))
        self.meta: list[str] = []
        self.in_hunks = False

    def _header_or_hunk(self, line: str) -> None:
        """Handle an extended header line, a hunk header or a trailing marker."""
        if line.startswith("@@"):
            self._hunk(line)
        elif line.startswith("\\"):
            self.lines.append(DiffLine("meta", line, None, None, self.path))
        elif not self.in_hunks and line:
            self._extended_header(line)

    def _extended_header(self, line: str) -> None:
        """Record paths and status from `new file`, `rename to`, `---` and friends."""
        if line.startswith("--- "):
            self.old_path = _marker_path(line[4:]) or self.old_path
            return
        if line.startswith("+++ "):
            self.path = _marker_path(line[4:]) or self.path
            return
        if line.startswith("new file mode"):
            self.status = "added"
        elif line.startswith("deleted file mode"):
            self.status = "deleted"
        elif line.startswith(("rename from ", "copy from ")):
            self.old_path = unquote_path(line.split(" ", 2)[2])
        elif line.startswith(("rename to ", "copy to ")):
            self.path = unquote_path(line.split(" ", 2)[2])
            self.status = "renamed" if line.startswith("rename") else "added"
        elif line.startswith(("Binary files ", "GIT binary patch")):
            self.binary = True
        self.meta.append(line)

    def _hunk(self, line: str) -> None:
        """Start a hunk: flush the file's meta lines, then reset the counters."""
        if not self.in_hunks:
            self._flush_meta()
            self.in_hunks = True
        match = _HUNK.match(line)
        if match is None:
            self.lines.append(DiffLine("meta", line, None, None, self.path))
            return
        old_start, old_len, new_start, new_len = match.groups()
        self.old_no, self.new_no = int(old_start), int(new_start)
        self.old_left = 1 if old_len is None else int(old_len)
        self.new_left = 1 if new_len is None else int(new_len)
        self.lines.append(DiffLine("hunk", line, None, None, self.path))

    def _flush_meta(self) -> None:
        """Emit the extended header lines once the final path is known."""
        path = self.path
        self.lines.extend(DiffLine("meta", text, None, None, path) for text in self.meta)
        self.meta = []

    def _close_file(self) -> None:
        """Finalise the current file's header line and summary."""
        if not self.in_file:
            return
        self.in_file = False
        self.old_left = self.new_left = 0
        if not self.in_hunks:
            self._flush_meta()
        status = "binary" if self.binary else self.status
        old_path = self.old_path if self.old_path != self.path else None
        title = f"{old_path} → {self.path}" if old_path else self.path
        self.lines[self.header_index] = DiffLine("file", title, None, None, self.path)
        self.files.append(
            FileDiff(self.path, old_path, status, self.added, self.removed, self.header_index)
        )
